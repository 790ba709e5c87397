using System.CommandLine;
using System.Globalization;
using CeDsl.Training;

using static CeDsl.Cli.Formatting;

namespace CeDsl.Cli.Commands;

/// <summary><c>cedsl eval</c>: test loss and accuracy of a checkpoint, trained or folded.</summary>
internal sealed class EvalCommand
{
    private readonly DataOptions _data = new(withTrain: false);
    private readonly Option<string?> _checkpoint = CliOptions.Path("--checkpoint",
        "A checkpoint written by cedsl train or cedsl fold, or a plain state dict (PyTorch .pt/.pth, safetensors) with --network", "file", required: true);
    private readonly Option<string> _network = Models.NetworkOption();
    private readonly Option<string?> _assembly = NetworkCatalog.AssemblyOption();
    private readonly Option<int> _batch = CliOptions.Integer("--batch", "Images per evaluation batch", 500, 1, "must be positive");

    public static Command Create() => new EvalCommand().Build();

    private Command Build()
    {
        var command = new Command("eval", "Evaluate a checkpoint (trained or folded) on the Fashion-MNIST test images: loss and top-1 accuracy.")
        {
            _checkpoint, _network, _assembly, _batch,
        };
        _data.AddTo(command);
        CommandAction.Set(command, (parse, output) =>
        {
            using var model = LoadedModel.Load(parse.GetValue(_checkpoint)!, parse.GetValue(_network), NetworkCatalog.Load(parse.GetValue(_assembly)));
            using var data = _data.Load(parse, output.Output);
            var result = Evaluator.Evaluate(model.Network, data.Test, model.Normalization, model.PadTo, parse.GetValue(_batch));
            output.Output.WriteLine($"model: {model.Description} from {parse.GetValue(_checkpoint)}");
            output.Output.WriteLine(Describe(result));
            return 0;
        });
        return command;
    }

    /// <summary>"test loss 0.3456, accuracy 87.65% (8,765 of 10,000 images)".</summary>
    internal static string Describe(EvaluationResult result) => string.Create(CultureInfo.InvariantCulture,
        $"test loss {result.Loss:F4}, accuracy {Percent(result.Accuracy)} ({Math.Round(result.Accuracy * result.Images):N0} of {result.Images:N0} images)");
}
