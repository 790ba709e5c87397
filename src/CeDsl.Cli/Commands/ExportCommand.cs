using System.CommandLine;
using System.Reflection;
using CeDsl.Architecture;
using CeDsl.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl export</c>: writes a zoo network, or a checkpoint's network, for another framework: <c>--pytorch OUT.py</c>
/// a PyTorch module file (<see cref="PyTorchExportFile"/>).
/// </summary>
internal sealed class ExportCommand
{
    private readonly Option<string> _model = new("--model") { Description = "Network of the zoo", HelpName = "name" };
    private readonly Option<string?> _checkpoint = CliOptions.Path("--checkpoint",
        "A checkpoint written by cedsl train or cedsl fold (its network, folded or not), or a plain state dict with --network, instead of --model", "file");
    private readonly Option<string> _network = Models.NetworkOption();
    private readonly Option<bool> _folded = new("--folded") { Description = "With --model: the folded inference form of the network" };
    private readonly Option<int?> _classes = CliOptions.OptionalInteger("--classes",
        $"With --model: classes [default: {DataOptions.Classes}, Fashion-MNIST's, as cedsl train builds the network]", "N", 1, "must be positive", SummaryCommand.MaxClasses);
    private readonly Option<long[]?> _input = InputShapes.Option(
        $"With --model: input shape CxHxW [default: {InputShapes.Format(Models.InputShape)}, Fashion-MNIST as cedsl train feeds it]");
    private readonly Option<string?> _pytorch = CliOptions.Path("--pytorch",
        "Write the network as a PyTorch module file (.py; it imports cedsl_torch from the repository's python/ folder)", "file.py");

    public static Command Create() => new ExportCommand().Build();

    private Command Build()
    {
        var command = new Command("export", "Write a network of the zoo or of a checkpoint for PyTorch: a module file with the same state-dict keys (docs/python.md).")
        {
            _model, _checkpoint, _network, _folded, _classes, _input, _pytorch,
        };
        CommandAction.Set(command, (parse, output) =>
        {
            string pytorch = parse.GetValue(_pytorch) ?? throw new UserException("Give the file to write: --pytorch FILE.py.");
            PyTorchExportFile.CheckPath(pytorch);
            using var target = Resolve(parse);
            PyTorchExportFile.Write(target, pytorch, output.Output);
            return 0;
        });
        return command;
    }

    private ExportTarget Resolve(ParseResult parse)
    {
        string? model = parse.GetValue(_model), checkpoint = parse.GetValue(_checkpoint);
        if ((model is not null) == (checkpoint is not null))
            throw new UserException("Give --model (a zoo network) or --checkpoint (a trained or folded checkpoint), not both.");
        if (checkpoint is not null)
        {
            if (parse.GetValue(_folded) || parse.GetValue(_classes) is not null || parse.GetValue(_input) is { Length: > 0 })
                throw new UserException("--folded, --classes and --input apply to --model; a checkpoint's network is the one it holds (folded or not, Fashion-MNIST's classes and input).");
            var loaded = LoadedModel.Load(checkpoint, parse.GetValue(_network));
            try
            {
                var architecture = Describe(loaded.Entry, loaded.IsFolded, DataOptions.Classes, Models.InputShape);
                return new ExportTarget(loaded.Entry, loaded.IsFolded, architecture, loaded.Network, $"{loaded.Description} from {checkpoint}", checkpoint);
            }
            catch
            {
                loaded.Dispose();
                throw;
            }
        }
        if (parse.GetValue(_network) is not null)
            throw new UserException("--network names the network of a plain state dict given with --checkpoint; with --model it is not needed.");
        var entry = Models.Find(model!);
        bool folded = parse.GetValue(_folded);
        long classes = parse.GetValue(_classes) ?? DataOptions.Classes;
        long[] input = parse.GetValue(_input) is { Length: > 0 } given ? given : Models.InputShape;
        var described = Describe(entry, folded, classes, input);
        var network = folded ? entry.CreateFolded(classes, input[0]) : entry.Create(classes, input[0]);
        return new ExportTarget(entry, folded, described, network, $"{entry.Name}{(folded ? " (folded)" : "")}", Checkpoint: null);
    }

    /// <summary>The architecture of <paramref name="entry"/>'s class (or its <c>Folded</c> class) for these classes and input.</summary>
    /// <exception cref="UserException">The network cannot take that input; the message names the node that cannot.</exception>
    internal static ModuleArchitecture Describe(ZooEntry entry, bool folded, long classes, long[] input)
    {
        var type = folded ? entry.Type.GetNestedType("Folded", BindingFlags.Public)! : entry.Type;
        var method = type.GetMethod("DescribeArchitecture", BindingFlags.Public | BindingFlags.Static)
            ?? throw new InvalidOperationException($"{type.Name} has no DescribeArchitecture method.");
        var values = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["classes"] = classes, ["inChannels"] = input[0], ["inputHeight"] = input[1], ["inputWidth"] = input[2],
        };
        var parameters = method.GetParameters();
        if (parameters.Any(p => !values.ContainsKey(p.Name!) && !p.HasDefaultValue))
            throw new InvalidOperationException($"{type.Name}.DescribeArchitecture takes parameters other than classes, inChannels, inputHeight and inputWidth.");
        try
        {
            return (ModuleArchitecture)method.Invoke(null, [.. parameters.Select(p => values.TryGetValue(p.Name!, out var value) ? value : p.DefaultValue)])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is ArgumentException problem)
        {
            throw new UserException($"--input {InputShapes.Format(input)}: {entry.Name} cannot take it: {problem.Message}", problem);
        }
    }
}

/// <summary>What <c>cedsl export</c> writes: a zoo network, folded or not, its architecture, and the built module (class names; a checkpoint's weights).</summary>
/// <param name="Entry">The zoo entry.</param>
/// <param name="IsFolded">Whether it is the folded inference form.</param>
/// <param name="Architecture">Its architecture for the classes and input exported.</param>
/// <param name="Network">The TorchSharp module the architecture describes.</param>
/// <param name="Description">What it is, for messages.</param>
/// <param name="Checkpoint">The checkpoint it came from, or null for --model.</param>
internal sealed record ExportTarget(ZooEntry Entry, bool IsFolded, ModuleArchitecture Architecture, nn.Module<Tensor, Tensor> Network, string Description, string? Checkpoint)
    : IDisposable
{
    public void Dispose() => Network.Dispose();
}
