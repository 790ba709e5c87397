using System.CommandLine;
using System.CommandLine.Invocation;
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
        ExportCommand.Create(),
        BenchCommand.Create(),
        SummaryCommand.Create(),
        PlotCommand.Create(),
        DemoCommand.Create(),
        TrainStepCommand.Create(),
    };

    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code (0 ok, 1 a failure, 130/143 interrupted by SIGINT/SIGTERM).</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null) => Run(CreateRoot(), args, output, error);

    /// <summary>
    /// Parses and runs <paramref name="args"/> with <paramref name="root"/>. A bad command line is one
    /// line on stderr naming every problem (<c>cedsl train: error: --epochs must be positive; got 0.</c>)
    /// and exit code 1, like every other failure.
    /// </summary>
    public static int Run(RootCommand root, IReadOnlyList<string> args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        string name = "cedsl";
        try
        {
            var parse = root.Parse(args);
            name = CommandAction.NameOf(parse.CommandResult.Command);
            if (parse.Action is ParseErrorAction && parse.Errors.Count > 0)
            {
                // Some of System.CommandLine's own messages span lines; the report is one.
                string problems = string.Join(" ", parse.Errors.Select(e => string.Join(" ", e.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))).Distinct());
                error.WriteLine($"{name}: error: {problems} (see {name} --help)");
                return CommandAction.UserError;
            }
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            error.WriteLine(CommandAction.Describe(name, e));
            return CommandAction.UserError;
        }
    }
}
