using System.CommandLine;
using CeDsl.Data;
using CeDsl.Folding;
using CeDsl.Onnx;
using CeDsl.Training;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static CeDsl.Cli.Formatting;
using static TorchSharp.torch;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl export</c>: writes a checkpoint's network in another format. <c>--onnx OUT.onnx</c>: a standard ONNX
/// model of the network (folded where it folds, unless <c>--no-fold</c>), run in ONNX Runtime on test images
/// and checked against the network before it is written, so a wrong file is never written.
/// </summary>
internal sealed class ExportCommand
{
    /// <summary>Largest accepted |ONNX Runtime - TorchSharp| logit difference, relative to the largest logit of the batch.</summary>
    private const double OnnxTolerance = 1e-4;

    private const int OnnxBatch = 100;

    private readonly DataOptions _data = new(withTrain: false);
    private readonly Option<string?> _checkpoint = CliOptions.Path("--checkpoint",
        "A checkpoint written by cedsl train or cedsl fold, or a plain state dict (PyTorch .pt/.pth, safetensors) with --network", "file", required: true);
    private readonly Option<string> _network = Models.NetworkOption();
    private readonly Option<string?> _assembly = NetworkCatalog.AssemblyOption();
    private readonly Option<string?> _onnx = CliOptions.Path("--onnx", "The ONNX model to write (opset 17, standard operators, dynamic batch size)", "file");
    private readonly Option<bool> _noFold = new("--no-fold")
    {
        Description = "Export the trained network's evaluation form as it is, instead of its folded inference form",
    };

    public static Command Create() => new ExportCommand().Build();

    private Command Build()
    {
        var command = new Command("export", "Export a checkpoint's network: --onnx writes an ONNX model (folded where the network folds) that ONNX Runtime runs without libtorch, checked against the network on test images first.")
        {
            _checkpoint, _network, _assembly, _onnx, _noFold,
        };
        _data.AddTo(command);
        CommandAction.Set(command, Run);
        return command;
    }

    private int Run(ParseResult parse, CommandOutput output)
    {
        string checkpoint = parse.GetValue(_checkpoint)!;
        string? onnx = parse.GetValue(_onnx);
        if (onnx is null)
            throw new UserException("give the file to write: --onnx OUT.onnx.");
        CheckDestination("--onnx", onnx, checkpoint, "model.onnx");

        using var model = LoadedModel.Load(checkpoint, parse.GetValue(_network), NetworkCatalog.Load(parse.GetValue(_assembly)));
        using var data = _data.Load(parse, output.Output);
        output.Output.WriteLine($"model: {model.Description} from {checkpoint}");
        ExportOnnx(model, data.Test, onnx, fold: !parse.GetValue(_noFold), output.Output);
        return 0;
    }

    private static void CheckDestination(string option, string path, string checkpoint, string example)
    {
        if (Path.GetFullPath(path) == Path.GetFullPath(checkpoint))
            throw new UserException($"{option}: '{path}' is the checkpoint being exported; write the export beside it.");
        if (Directory.Exists(path))
            throw new UserException($"{option}: '{path}' is a directory; give the file to write (e.g. {Path.Combine(path, example)}).");
    }

    /// <summary>
    /// Writes the ONNX model of <paramref name="model"/> (its folded form with <paramref name="fold"/> where it folds) after
    /// running it in ONNX Runtime on <paramref name="test"/> against the TorchSharp module it was exported from.
    /// </summary>
    private static void ExportOnnx(LoadedModel model, ImageDataset test, string path, bool fold, TextWriter text)
    {
        if (!fold && model.IsFolded)
            throw new UserException($"--no-fold: the checkpoint holds the folded network only; export it without --no-fold, or export the trained checkpoint it was folded from.");
        bool folds = fold && !model.IsFolded && model.Network is IFoldable;
        using var folded = folds ? ((IFoldable)model.Network).Fold() : null;
        var network = folded ?? model.Network;
        network.eval();
        string form = model.IsFolded || folds ? "folded" : "evaluation form";

        int side = model.PadTo ?? test.Height;
        var options = new OnnxExportOptions
        {
            Metadata = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                // The name the commands know the network by: the zoo's (ce-resnet20) or its class's (with --assembly).
                ["cedsl.model"] = model.Entry.Name,
                ["cedsl.form"] = model.IsFolded || folds ? "folded" : "evaluation",
            },
        }.WithPreprocessing(model.Normalization.Mean, model.Normalization.Std, model.PadTo, FashionMnist.ClassNames);
        global::Onnx.ModelProto onnx;
        try
        {
            var architecture = OnnxExport.ArchitectureOf(network, side, side);
            onnx = OnnxExport.ToModel(architecture, network.state_dict(), options);
        }
        catch (OnnxExportException e)
        {
            throw new UserException($"'{model.Entry.Name}' ({form}) cannot be exported to ONNX: {e.Message}", e);
        }
        byte[] bytes = onnx.ToByteArray();

        var (agreeing, correct, difference) = CompareInOnnxRuntime(network, bytes, test, model.Normalization, model.PadTo);
        text.WriteLine(Invariant($"checked in ONNX Runtime on {test.Count:N0} test images: largest relative logit difference {difference:G3}, same prediction for {agreeing:N0} ({Percent((double)agreeing / test.Count)}), accuracy {Percent((double)correct / test.Count)} ({correct:N0} of {test.Count:N0} images)"));
        if (!(difference <= OnnxTolerance))
            throw new UserException(Invariant($"ONNX Runtime's logits differ from the network's by {difference:G3} (relative), more than {OnnxTolerance}; nothing was written. This is a bug in the ONNX export: please report it with the checkpoint."));

        OnnxExport.Write(onnx, path);
        var input = onnx.Graph.Input[0];
        text.WriteLine(Invariant($"wrote {path}: {model.Entry.Name} ({form}), ONNX opset {OnnxExport.Opset}, {onnx.Graph.Node.Count:N0} operators, input '{input.Name}' [batch, {string.Join(", ", input.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue))}] float32, output '{onnx.Graph.Output[0].Name}'; {bytes.Length / 1e6:F1} MB"));
    }

    /// <summary>
    /// Runs the network and the ONNX model over the test images: how many get the same prediction, how many the model
    /// classifies correctly, and the largest |difference| of a logit relative to the largest |logit| of its batch (at least 1).
    /// </summary>
    private static (long Agreeing, long Correct, double Difference) CompareInOnnxRuntime(nn.Module<Tensor, Tensor> network, byte[] model, ImageDataset test,
        Normalization normalization, int? padTo)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(model, options);
        using var loader = new BatchLoader(test, new BatchOptions { BatchSize = OnnxBatch, Normalization = normalization, PadTo = padTo });
        using var noGrad = torch.no_grad();
        long agreeing = 0, correct = 0;
        double difference = 0;
        for (int index = 0; index < loader.BatchesPerEpoch; index++)
        {
            using var scope = torch.NewDisposeScope();
            using var batch = loader.GetBatch(0, index);
            var images = batch.Images.contiguous();
            var expected = network.call(images);
            using var input = OrtValue.CreateTensorValueFromMemory(images.data<float>().ToArray(), images.shape);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, [session.InputNames[0]], [input], [session.OutputNames[0]]);
            var actual = torch.tensor(outputs[0].GetTensorDataAsSpan<float>().ToArray()).view(expected.shape);
            double scale = Math.Max(1, expected.abs().max().item<float>());
            difference = Math.Max(difference, (actual - expected).abs().max().item<float>() / scale);
            agreeing += actual.argmax(1).eq(expected.argmax(1)).sum().item<long>();
            correct += actual.argmax(1).eq(batch.Labels).sum().item<long>();
        }
        return (agreeing, correct, difference);
    }
}
