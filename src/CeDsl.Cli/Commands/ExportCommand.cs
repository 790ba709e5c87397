using System.CommandLine;
using CeDsl.Architecture;
using CeDsl.Data;
using CeDsl.Folding;
using CeDsl.Networks;
using CeDsl.Onnx;
using CeDsl.Training;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static CeDsl.Cli.Formatting;
using static TorchSharp.torch;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl export</c>: writes a network in another format. <c>--onnx OUT.onnx</c>: a checkpoint's network as a standard
/// ONNX model (folded where it folds, unless <c>--no-fold</c>), run in ONNX Runtime on test images and checked against
/// the network before it is written, so a wrong file is never written. <c>--pytorch OUT.py</c>: a zoo network, or a
/// checkpoint's network as it is, as a PyTorch module file (<see cref="PyTorchExportFile"/>). Given both, both are
/// prepared (and the ONNX model checked) before either is written.
/// </summary>
internal sealed class ExportCommand
{
    /// <summary>Largest accepted |ONNX Runtime - TorchSharp| logit difference, relative to the largest logit of the batch.</summary>
    private const double OnnxTolerance = 1e-4;

    private const int OnnxBatch = 100;

    private readonly DataOptions _data = new(withTrain: false);
    private readonly Option<string> _model = new("--model") { Description = "With --pytorch: a network of the zoo or of --assembly, instead of --checkpoint", HelpName = "name" };
    private readonly Option<string?> _checkpoint = CliOptions.Path("--checkpoint",
        "A checkpoint written by cedsl train or cedsl fold (its network, folded or not), or a plain state dict (PyTorch .pt/.pth, safetensors) with --network", "file");
    private readonly Option<string> _network = Models.NetworkOption();
    private readonly Option<string?> _assembly = NetworkCatalog.AssemblyOption();
    private readonly Option<string?> _onnx = CliOptions.Path("--onnx", "Write the checkpoint's network as an ONNX model (opset 17, standard operators, dynamic batch size)", "file");
    private readonly Option<bool> _noFold = new("--no-fold")
    {
        Description = "With --onnx: export the trained network's evaluation form as it is, instead of its folded inference form",
    };
    private readonly Option<string?> _pytorch = CliOptions.Path("--pytorch",
        "Write the network as a PyTorch module file (.py; it imports cedsl_torch from the repository's python/ folder)", "file.py");
    private readonly Option<bool> _folded = new("--folded") { Description = "With --model: the folded inference form of the network" };
    private readonly Option<int?> _classes = CliOptions.OptionalInteger("--classes",
        $"With --model: classes [default: {FashionMnist.Classes}, Fashion-MNIST's, as cedsl train builds the network]", "N", 1, "must be positive", SummaryCommand.MaxClasses);
    private readonly Option<long[]?> _input = InputShapes.Option(
        $"With --model: input shape CxHxW [default: {InputShapes.Format(Models.InputShape)}, Fashion-MNIST as cedsl train feeds it]");

    public static Command Create() => new ExportCommand().Build();

    private Command Build()
    {
        var command = new Command("export", "Export a network. --onnx: a checkpoint's network as an ONNX model (folded where the network folds) that " +
            "ONNX Runtime runs without libtorch, checked against the network on test images first. --pytorch: a zoo network or a checkpoint's " +
            "as a PyTorch module file with the same state-dict keys (docs/python.md).")
        {
            _checkpoint, _network, _assembly, _onnx, _noFold, _pytorch, _model, _folded, _classes, _input,
        };
        _data.AddTo(command);
        CommandAction.Set(command, Run);
        return command;
    }

    private int Run(ParseResult parse, CommandOutput output)
    {
        string? onnx = parse.GetValue(_onnx), pytorch = parse.GetValue(_pytorch);
        if (onnx is null && pytorch is null)
            throw new UserException("give the file to write: --onnx OUT.onnx (an ONNX model of a checkpoint's network) or --pytorch OUT.py (a PyTorch module file), or both.");
        string? model = parse.GetValue(_model), checkpoint = parse.GetValue(_checkpoint);
        if (onnx is not null && checkpoint is null)
            throw new UserException("--onnx exports a trained network: give --checkpoint FILE (written by cedsl train or cedsl fold, or a plain state dict with --network); --model is for --pytorch.");
        if ((model is not null) == (checkpoint is not null))
            throw new UserException("Give --model (a zoo network) or --checkpoint (a trained or folded checkpoint), not both.");
        if (onnx is not null)
            CheckDestination("--onnx", onnx, checkpoint!, "model.onnx");
        else
        {
            if (parse.GetValue(_noFold))
                throw new UserException("--no-fold applies to --onnx; --pytorch writes a checkpoint's network as it is (folded or not).");
            if (parse.GetValue(_data.Data) is not null || parse.GetValue(_data.Embedded) || parse.GetValue(_data.LimitTest) is not null)
                throw new UserException("--data, --embedded and --limit-test choose the test images --onnx checks its model on; --pytorch reads no images.");
        }
        if (pytorch is not null)
        {
            PyTorchExportFile.CheckPath(pytorch);
            if (onnx is not null && Path.GetFullPath(onnx) == Path.GetFullPath(pytorch))
                throw new UserException($"--onnx and --pytorch both name '{pytorch}'; give each its own file.");
        }

        var networks = NetworkCatalog.Load(parse.GetValue(_assembly));
        if (checkpoint is not null)
            ExportCheckpoint(parse, networks, checkpoint, onnx, pytorch, output.Output);
        else
            ExportNetwork(parse, networks, model!, pytorch!, output.Output);
        return 0;
    }

    private void ExportCheckpoint(ParseResult parse, NetworkCatalog networks, string checkpoint, string? onnx, string? pytorch, TextWriter text)
    {
        if (parse.GetValue(_folded) || parse.GetValue(_classes) is not null || parse.GetValue(_input) is { Length: > 0 })
            throw new UserException("--folded, --classes and --input apply to --model; a checkpoint's network is the one it holds (folded or not, Fashion-MNIST's classes and input).");
        using var model = LoadedModel.Load(checkpoint, parse.GetValue(_network), networks);
        text.WriteLine($"model: {model.Description} from {checkpoint}");
        PyTorchExportFile.Prepared? module = null;
        if (pytorch is not null)
        {
            var architecture = Describe(model.Entry, model.IsFolded, FashionMnist.Classes, [.. Models.InputShape]);
            module = PyTorchExportFile.Prepare(new ExportTarget(model.Entry, model.IsFolded, architecture, model.Network, $"{model.Description} from {checkpoint}", checkpoint));
        }
        PreparedOnnx? prepared = null;
        if (onnx is not null)
        {
            using var data = _data.Load(parse, text);
            prepared = PrepareOnnx(model, data.Test, fold: !parse.GetValue(_noFold), text);
        }

        if (prepared is not null)
        {
            OnnxExport.Write(prepared.Model, onnx!);
            text.WriteLine($"wrote {onnx}: {prepared.Summary}");
        }
        if (module is not null)
            PyTorchExportFile.Write(module, pytorch!, text);
    }

    private void ExportNetwork(ParseResult parse, NetworkCatalog networks, string name, string pytorch, TextWriter text)
    {
        if (parse.GetValue(_network) is not null)
            throw new UserException("--network names the network of a plain state dict given with --checkpoint; with --model it is not needed.");
        var entry = networks.Find(name);
        bool folded = parse.GetValue(_folded);
        long classes = parse.GetValue(_classes) ?? FashionMnist.Classes;
        long[] input = parse.GetValue(_input) is { Length: > 0 } given ? given : [.. Models.InputShape];
        using var network = folded ? entry.CreateFolded(classes, input[0]) : entry.Create(classes, input[0]);
        var architecture = Describe(entry, folded, classes, input);
        var module = PyTorchExportFile.Prepare(new ExportTarget(entry, folded, architecture, network, $"{entry.Name}{(folded ? " (folded)" : "")}", Checkpoint: null));
        PyTorchExportFile.Write(module, pytorch, text);
    }

    private static void CheckDestination(string option, string path, string checkpoint, string example)
    {
        if (Path.GetFullPath(path) == Path.GetFullPath(checkpoint))
            throw new UserException($"{option}: '{path}' is the checkpoint being exported; write the export beside it.");
        if (Directory.Exists(path))
            throw new UserException($"{option}: '{path}' is a directory; give the file to write (e.g. {Path.Combine(path, example)}).");
    }

    /// <summary>The architecture of <paramref name="entry"/>'s class (or its <c>Folded</c> class) for these classes and input.</summary>
    /// <exception cref="UserException">The network cannot take that input; the message names the node that cannot.</exception>
    internal static ModuleArchitecture Describe(NetworkEntry entry, bool folded, long classes, long[] input)
    {
        try
        {
            return GeneratedNetwork.Of(entry.Type).Describe(classes, TensorShape.Map(input[0], input[1], input[2]), folded);
        }
        catch (ArgumentException problem)
        {
            throw new UserException($"--input {InputShapes.Format(input)}: {entry.Name} cannot take it: {problem.Message}", problem);
        }
    }

    /// <summary>An ONNX model checked in ONNX Runtime, and what it is (for the line that says it was written).</summary>
    private sealed record PreparedOnnx(global::Onnx.ModelProto Model, string Summary);

    /// <summary>
    /// The ONNX model of <paramref name="model"/> (its folded form with <paramref name="fold"/> where it folds), run in ONNX
    /// Runtime on <paramref name="test"/> against the TorchSharp module it was exported from.
    /// </summary>
    /// <exception cref="UserException">It cannot be exported, or ONNX Runtime's logits differ by more than <see cref="OnnxTolerance"/>.</exception>
    private static PreparedOnnx PrepareOnnx(LoadedModel model, ImageDataset test, bool fold, TextWriter text)
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

        var input = onnx.Graph.Input[0];
        return new PreparedOnnx(onnx, Invariant($"{model.Entry.Name} ({form}), ONNX opset {OnnxExport.Opset}, {onnx.Graph.Node.Count:N0} operators, input '{input.Name}' [batch, {string.Join(", ", input.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue))}] float32, output '{onnx.Graph.Output[0].Name}'; {bytes.Length / 1e6:F1} MB"));
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

/// <summary>What <c>cedsl export --pytorch</c> writes: a network of the zoo or of --assembly, folded or not, its architecture, and the built module (class names; a checkpoint's weights).</summary>
/// <param name="Entry">The network's entry: of the zoo, or of --assembly.</param>
/// <param name="IsFolded">Whether it is the folded inference form.</param>
/// <param name="Architecture">Its architecture for the classes and input exported.</param>
/// <param name="Network">The TorchSharp module the architecture describes (owned by the caller).</param>
/// <param name="Description">What it is, for messages.</param>
/// <param name="Checkpoint">The checkpoint it came from, or null for --model.</param>
internal sealed record ExportTarget(NetworkEntry Entry, bool IsFolded, ModuleArchitecture Architecture, nn.Module<Tensor, Tensor> Network, string Description, string? Checkpoint);
