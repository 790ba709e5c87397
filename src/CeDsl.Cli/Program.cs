using System.CommandLine;
using CeDsl.Cli;

var root = new RootCommand("cedsl: Channel Equilibrium networks for TorchSharp.");
root.Add(DemoCommand.Create());
return root.Parse(args).Invoke();
