using System.CommandLine;
using CeDsl.Cli.Commands;

namespace CeDsl.Cli;

/// <summary>The <c>cedsl</c> command line: its commands and how they are invoked.</summary>
internal static class Cli
{
    public static RootCommand CreateRoot() => new("cedsl: Channel Equilibrium networks for TorchSharp, trained and analysed on Fashion-MNIST.")
    {
        TrainCommand.Create(),
        EvalCommand.Create(),
        AnalyzeCommand.Create(),
        FoldCommand.Create(),
        BenchCommand.Create(),
        SummaryCommand.Create(),
        DemoCommand.Create(),
        TrainStepCommand.Create(),
    };

    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code (0 ok, 1 bad arguments or files).</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var configuration = new InvocationConfiguration { Output = output ?? Console.Out, Error = error ?? Console.Error };
        return CreateRoot().Parse(args).Invoke(configuration);
    }
}
