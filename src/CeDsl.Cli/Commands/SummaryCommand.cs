using System.CommandLine;
using System.Globalization;
using CeDsl.Analysis;
using CeDsl.Data;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl summary</c>: layers, output shapes, parameters and multiply-accumulates of a network (of the zoo or of
/// --assembly) as cedsl builds it, or of a checkpoint's network.
/// </summary>
internal sealed class SummaryCommand
{
    private readonly Option<string> _model = new("--model") { Description = "A network of the zoo or of --assembly", HelpName = "name" };
    private readonly Option<string?> _checkpoint = CliOptions.Path("--checkpoint", "A checkpoint written by cedsl train or cedsl fold, instead of --model (a pruned folded one has its smaller shapes)", "file");
    private readonly Option<string?> _assembly = NetworkCatalog.AssemblyOption();
    private readonly Option<long[]?> _input = InputShapes.Option($"Input shape CxHxW [default: {InputShapes.Format(Models.InputShape)}, a padded Fashion-MNIST image, as cedsl train builds the network]");
    private readonly Option<int?> _classes = CliOptions.OptionalInteger("--classes", $"Classes [default: {FashionMnist.Classes}, Fashion-MNIST's; at most {MaxClasses:N0}]", "N", 1, "must be positive", MaxClasses);

    /// <summary>
    /// The most classes --classes accepts: ImageNet-21k has 21,841; 100,000 classes make a 0.8 GB
    /// classifier after ResNet-50's 2,048 features, 100,000,000 would make 800 GB.
    /// </summary>
    public const int MaxClasses = 100_000;

    public static Command Create() => new SummaryCommand().Build();

    private Command Build()
    {
        var command = new Command("summary", "Print a network's layers, output shapes, parameters and multiply-accumulates (MACs, the FLOPs convention of the papers).")
        {
            _model, _checkpoint, _assembly, _input, _classes,
        };
        CommandAction.Set(command, (parse, output) =>
        {
            if ((parse.GetValue(_model) is not null) == (parse.GetValue(_checkpoint) is not null))
                throw new UserException("Give --model (a network of the zoo or of --assembly) or --checkpoint (a trained or folded checkpoint), not both.");
            if (parse.GetValue(_checkpoint) is not null && parse.GetValue(_classes) is not null)
                throw new UserException("--classes applies to --model; a checkpoint's network has its own.");
            var networks = NetworkCatalog.Load(parse.GetValue(_assembly));
            var input = parse.GetValue(_input) is { Length: > 0 } given ? given : [.. Models.InputShape];
            if (parse.GetValue(_checkpoint) is { } checkpoint)
            {
                using var model = LoadedModel.Load(checkpoint, network: null, networks);
                output.Output.WriteLine($"{model.Description} ({model.Entry.Type.Name}{(model.IsFolded ? ".Folded" : "")}) from {checkpoint}");
                output.Output.Write(Summarize(model.Network, input).ToTable());
                return 0;
            }
            var entry = networks.Find(parse.GetValue(_model)!);
            long classes = parse.GetValue(_classes) ?? FashionMnist.Classes;
            using var network = entry.Create(classes, inChannels: input[0]);
            var summary = Summarize(network, input);
            output.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{entry.Name} ({entry.Type.Name}), {classes} classes (declared: input {InputShapes.Format(entry.DeclaredInput)}, {entry.DeclaredClasses} classes)"));
            output.Output.Write(summary.ToTable());
            return 0;
        });
        return command;
    }

    private static NetworkSummary Summarize(TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> network, long[] input)
    {
        try
        {
            return NetworkSummary.Of(network, input);
        }
        catch (ArgumentException e)
        {
            throw new UserException($"--input {InputShapes.Format(input)}: {e.Message}", e);
        }
    }
}
