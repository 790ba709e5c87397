using System.CommandLine;
using CeDsl.Analysis;

namespace CeDsl.Cli.Commands;

/// <summary><c>cedsl summary</c>: layers, output shapes, parameters and multiply-accumulates of a zoo network.</summary>
internal sealed class SummaryCommand
{
    private readonly Option<string> _model = new("--model") { Description = "Network of the zoo", Required = true, HelpName = "name" };
    private readonly Option<long[]?> _input = InputShapes.Option("Input shape CxHxW [default: the network's declared input, e.g. 3x224x224 or 3x32x32]");
    private readonly Option<int?> _classes = new("--classes") { Description = "Classes [default: the network's declared classes]", HelpName = "N" };

    public static Command Create() => new SummaryCommand().Build();

    private Command Build()
    {
        var command = new Command("summary", "Print a network's layers, output shapes, parameters and multiply-accumulates (MACs, the FLOPs convention of the papers).")
        {
            _model, _input, _classes,
        };
        _classes.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is <= 0)
                r.AddError("--classes must be positive.");
        });
        CommandAction.Set(command, (parse, output) =>
        {
            var entry = Models.Find(parse.GetValue(_model)!);
            var input = parse.GetValue(_input) is { Length: > 0 } given ? given : [.. entry.InputShape];
            using var network = entry.Create(parse.GetValue(_classes), inChannels: input[0]);
            NetworkSummary summary;
            try
            {
                summary = NetworkSummary.Of(network, input);
            }
            catch (ArgumentException e)
            {
                throw new UserException($"--input {InputShapes.Format(input)}: {e.Message}", e);
            }
            output.Output.WriteLine($"{entry.Name} ({entry.Type.Name}), {parse.GetValue(_classes) ?? entry.Classes} classes");
            output.Output.Write(summary.ToTable());
            return 0;
        });
        return command;
    }
}
