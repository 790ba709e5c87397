using CeDsl.Cli;

return Cli.Run(args);
