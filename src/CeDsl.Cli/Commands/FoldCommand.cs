using System.CommandLine;
using CeDsl.Data;
using CeDsl.Folding;
using CeDsl.Training;
using TorchSharp;
using static CeDsl.Cli.Formatting;
using static TorchSharp.torch;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl fold</c>: writes the folded inference form of a trained checkpoint (BN folded into the
/// convolutions, CE and AII in their folded forms), after checking on test images that it computes
/// what the trained network computes in evaluation mode.
/// </summary>
internal sealed class FoldCommand
{
    /// <summary>Largest accepted |folded - trained| logit difference, relative to the largest logit (at least 1).</summary>
    private const double Tolerance = 1e-3;

    private readonly DataOptions _data = new(withTrain: false);
    private readonly Option<string?> _checkpoint = CliOptions.Path("--checkpoint",
        "A checkpoint written by cedsl train, or a plain state dict (PyTorch .pt/.pth, safetensors) with --network", "file", required: true);
    private readonly Option<string> _network = Models.NetworkOption();
    private readonly Option<string?> _assembly = NetworkCatalog.AssemblyOption();
    private readonly Option<string?> _out = CliOptions.Path("--out", "The folded checkpoint to write (safetensors)", "file", required: true);

    public static Command Create() => new FoldCommand().Build();

    private Command Build()
    {
        var command = new Command("fold", "Write the folded inference form of a trained checkpoint (BN folded into convolutions, CE and AII folded); cedsl eval accepts it.")
        {
            _checkpoint, _network, _assembly, _out,
        };
        _data.AddTo(command);
        CommandAction.Set(command, Run);
        return command;
    }

    private int Run(ParseResult parse, CommandOutput output)
    {
        var text = output.Output;
        string checkpoint = parse.GetValue(_checkpoint)!, outPath = parse.GetValue(_out)!;
        if (Path.GetFullPath(outPath) == Path.GetFullPath(checkpoint))
            throw new UserException($"--out: '{outPath}' is the checkpoint being folded; write the folded one beside it.");
        if (Directory.Exists(outPath))
            throw new UserException($"--out: '{outPath}' is a directory; give the file to write (e.g. {Path.Combine(outPath, "folded.safetensors")}).");
        using var model = LoadedModel.Load(checkpoint, parse.GetValue(_network), NetworkCatalog.Load(parse.GetValue(_assembly)));
        if (model.IsFolded)
            throw new UserException($"--checkpoint: '{checkpoint}' is already folded.");
        if (model.Network is not IFoldable foldable)
            throw new UserException($"'{model.Entry.Name}' ({model.Entry.Type.Name}) cannot be folded.");
        using var folded = foldable.Fold();
        using var data = _data.Load(parse, text);
        text.WriteLine($"model: {model.Description} from {checkpoint}");

        var (images, agreeing, difference) = Compare(model, folded, data.Test);
        long parameters = model.Network.parameters().Sum(p => p.numel()), foldedParameters = folded.parameters().Sum(p => p.numel());
        text.WriteLine(Invariant($"checked on {images:N0} test images: largest relative logit difference {difference:G3}, same prediction for {agreeing:N0} ({Percent((double)agreeing / images)})"));
        if (!(difference <= Tolerance))
            throw new UserException(Invariant($"the folded network's logits differ from the trained network's by {difference:G3} (relative), more than {Tolerance}; nothing was written. This is a bug in folding: please report it with the checkpoint."));

        Checkpoint.SaveFolded(outPath, folded, model.Entry.Name);
        text.WriteLine(Invariant($"wrote {outPath}: {foldedParameters:N0} parameters (trained network: {parameters:N0}); evaluate it with cedsl eval --checkpoint {outPath}"));
        return 0;
    }

    /// <summary>
    /// Runs both networks over the test images: how many images, how many get the same prediction,
    /// and the largest |difference| of a logit relative to the largest |logit| of its batch (at least 1).
    /// </summary>
    private static (int Images, long Agreeing, double Difference) Compare(LoadedModel model, nn.Module<Tensor, Tensor> folded, ImageDataset test)
    {
        using var loader = new BatchLoader(test, new BatchOptions { BatchSize = 500, Normalization = model.Normalization, PadTo = model.PadTo });
        using var noGrad = torch.no_grad();
        long agreeing = 0;
        double difference = 0;
        for (int index = 0; index < loader.BatchesPerEpoch; index++)
        {
            using var scope = torch.NewDisposeScope();
            using var batch = loader.GetBatch(0, index);
            var expected = model.Network.call(batch.Images);
            var actual = folded.call(batch.Images);
            double scale = Math.Max(1, expected.abs().max().item<float>());
            difference = Math.Max(difference, (actual - expected).abs().max().item<float>() / scale);
            agreeing += actual.argmax(1).eq(expected.argmax(1)).sum().item<long>();
        }
        return (test.Count, agreeing, difference);
    }
}
