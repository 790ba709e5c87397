using System.Globalization;
using System.Text.RegularExpressions;
using CeDsl.Data;
using Microsoft.ML.OnnxRuntime;

namespace CeDsl.Cli.Tests;

/// <summary>
/// <c>cedsl export</c>. <c>--onnx</c> on a checkpoint written by <c>cedsl train</c>: the model, run in ONNX Runtime with
/// nothing but its file and its metadata (normalization, padding), classifies the test images exactly as <c>cedsl eval</c>
/// does. <c>--pytorch</c>: the module file it writes for a zoo network or a checkpoint (that the written modules compute
/// what the TorchSharp networks compute is shown in tests/CeDsl.Python.Tests: ZooTwins, RoundTripTests). Both at once,
/// and the errors of either (one line, exit code 1, nothing written).
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed partial class ExportCommandTests(TrainedRun run) : IDisposable
{
    private readonly string _directory = CliRun.TemporaryDirectory();

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    [Fact]
    public void A_zoo_network_is_written_for_Fashion_MNIST_as_cedsl_train_builds_it()
    {
        string file = PathOf("resnet20.py");
        var result = CliRun.Succeeds("export", "--model", "resnet20", "--pytorch", file);

        Assert.Contains($"wrote {file}: resnet20 as the PyTorch module ResNet20 (input N x 1x32x32, ", result.Output);
        string source = File.ReadAllText(file);
        Assert.Contains("INPUT_SHAPE = (1, 32, 32)\nOUTPUT_SHAPE = (10,)\n", source);
        Assert.Contains("class ResNet20(nn.Module):", source);
        Assert.Contains("self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)", source);
        Assert.Contains("self.fc = nn.Linear(64, 10)", source);
        Assert.Contains("cedsl_torch.init_torchvision(self)", source);
        Assert.Contains("def create():", source);
        Assert.Equal([file], Directory.GetFiles(_directory));
    }

    [Fact]
    public void Classes_input_and_the_folded_form_are_chosen_by_options()
    {
        string file = PathOf("resnet18.py");
        CliRun.Succeeds("export", "--model", "ce-resnet18", "--classes", "1000", "--input", "3x224x224", "--folded", "--pytorch", file);

        string source = File.ReadAllText(file);
        Assert.Contains("INPUT_SHAPE = (3, 224, 224)", source);
        Assert.Contains("class CeResNet18Folded(nn.Module):", source);
        Assert.Contains("cedsl_torch.FoldedChannelEquilibrium(64, group_size=64", source);
        Assert.Contains("nn.Linear(512, 1000)", source);
        Assert.DoesNotContain("BatchNorm2d", source);
    }

    [Fact]
    public void A_checkpoint_is_written_as_its_network_with_the_hint_to_load_its_weights()
    {
        string file = PathOf("trained.py");
        var result = CliRun.Succeeds("export", "--checkpoint", run.Checkpoint, "--pytorch", file);
        Assert.Contains("ce-resnet20 from " + run.Checkpoint, result.Output);
        Assert.Contains($"cedsl_torch.load_weights(model, \"{run.Checkpoint}\")", result.Output);
        Assert.Contains("class CeResNet20(nn.Module):", File.ReadAllText(file));

        string folded = PathOf("folded.safetensors");
        CliRun.Succeeds("fold", "--checkpoint", run.Checkpoint, "--out", folded, "--embedded", "--limit-test", "50");
        CliRun.Succeeds("export", "--checkpoint", folded, "--pytorch", file);
        Assert.Contains("class CeResNet20Folded(nn.Module):", File.ReadAllText(file));
    }

    [Theory]
    [InlineData("give the file to write: --onnx OUT.onnx (an ONNX model of a checkpoint's network) or --pytorch OUT.py (a PyTorch module file), or both.", "--model", "resnet20")]
    [InlineData("--onnx exports a trained network: give --checkpoint FILE", "--model", "resnet20", "--onnx", "{dir}/n.onnx")]
    [InlineData("--no-fold applies to --onnx", "--checkpoint", "{checkpoint}", "--no-fold", "--pytorch", "{dir}/n.py")]
    [InlineData("--data, --embedded and --limit-test choose the test images --onnx checks its model on", "--model", "resnet20", "--embedded", "--pytorch", "{dir}/n.py")]
    [InlineData("--onnx and --pytorch both name", "--checkpoint", "{checkpoint}", "--onnx", "{dir}/n.py", "--pytorch", "{dir}/n.py")]
    [InlineData("does not end in .py", "--model", "resnet20", "--pytorch", "{dir}/resnet20.txt")]
    [InlineData("is a directory", "--model", "resnet20", "--pytorch", "{dir}")]
    [InlineData("Give --model (a zoo network) or --checkpoint (a trained or folded checkpoint), not both.", "--pytorch", "{dir}/n.py")]
    [InlineData("No network is called 'resnet21'. Did you mean resnet20", "--model", "resnet21", "--pytorch", "{dir}/n.py")]
    [InlineData("--input 1x64x64: vgg16-bn cannot take it: ", "--model", "vgg16-bn", "--input", "1x64x64", "--pytorch", "{dir}/n.py")]
    [InlineData("--folded, --classes and --input apply to --model", "--checkpoint", "{checkpoint}", "--classes", "5", "--pytorch", "{dir}/n.py")]
    [InlineData("--network names the network of a plain state dict", "--model", "resnet20", "--network", "resnet20", "--pytorch", "{dir}/n.py")]
    public void A_bad_command_line_is_one_line_and_writes_nothing(string message, params string[] arguments)
    {
        var result = CliRun.Run(["export", .. arguments.Select(a => a.Replace("{dir}", _directory, StringComparison.Ordinal).Replace("{checkpoint}", run.Checkpoint, StringComparison.Ordinal))]);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("cedsl export: error: ", result.Error, StringComparison.Ordinal);
        Assert.Contains(message, result.Error);
        Assert.Single(result.Error.TrimEnd().Split('\n'));
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }

    [Fact]
    public void A_network_that_cannot_take_the_input_names_the_node_and_leaves_an_existing_file_as_it_was()
    {
        string file = PathOf("vgg.py");
        File.WriteAllText(file, "# mine");
        var result = CliRun.Run("export", "--model", "vgg16-bn", "--input", "1x64x64", "--pytorch", file);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("node 'classifier'", result.Error);
        Assert.Equal("# mine", File.ReadAllText(file));
        Assert.Equal([file], Directory.GetFiles(_directory));
    }

    [Fact]
    public void Both_formats_are_written_in_one_run_or_neither()
    {
        string onnx = PathOf("model.onnx"), pytorch = PathOf("model.py");
        var result = CliRun.Succeeds("export", "--checkpoint", run.Checkpoint, "--onnx", onnx, "--pytorch", pytorch, "--embedded", "--limit-test", "50");
        Assert.Contains($"wrote {onnx}: ce-resnet20 (folded), ONNX opset 17", result.Output);
        Assert.Contains($"wrote {pytorch}: ce-resnet20 from {run.Checkpoint} as the PyTorch module CeResNet20 ", result.Output);
        Assert.Contains("class CeResNet20(nn.Module):", File.ReadAllText(pytorch));
        using (var session = new InferenceSession(onnx))
            Assert.Equal("folded", session.ModelMetadata.CustomMetadataMap["cedsl.form"]);

        // The ONNX side fails after the PyTorch file is prepared: neither is written.
        string folded = PathOf("folded.safetensors");
        CliRun.Succeeds("fold", "--checkpoint", run.Checkpoint, "--out", folded, "--embedded", "--limit-test", "50");
        var before = CliRun.Snapshot(_directory);
        var failed = CliRun.Run("export", "--checkpoint", folded, "--no-fold", "--onnx", PathOf("again.onnx"), "--pytorch", PathOf("again.py"), "--embedded", "--limit-test", "50");
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("--no-fold: the checkpoint holds the folded network only", failed.Error);
        CliRun.AssertUnchanged(before, _directory);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_exported_model_has_the_test_accuracy_of_cedsl_eval_in_ONNX_Runtime(bool fold)
    {
        string model = Path.Combine(run.Root, fold ? "folded.onnx" : "evaluation.onnx");
        var export = CliRun.Succeeds(["export", "--checkpoint", run.Checkpoint, "--onnx", model, "--embedded", .. fold ? Array.Empty<string>() : ["--no-fold"]]);
        Assert.Contains($"wrote {model}: ce-resnet20 ({(fold ? "folded" : "evaluation form")}), ONNX opset 17", export.Output);
        Assert.Contains("input 'input' [batch, 1, 32, 32] float32, output 'logits'", export.Output);

        var evaluation = CliRun.Succeeds(["eval", "--checkpoint", run.Checkpoint, "--embedded"]);
        var match = AccuracyLine().Match(evaluation.Output);
        Assert.True(match.Success, evaluation.Output);
        int expected = int.Parse(match.Groups["correct"].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);

        using var session = new InferenceSession(model);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(fold ? "folded" : "evaluation", metadata["cedsl.form"]);
        Assert.Equal("ce-resnet20", metadata["cedsl.model"]);
        Assert.Equal(fold ? "CeResNet20.Folded" : "CeResNet20", metadata["cedsl.network"]);
        double mean = double.Parse(metadata["cedsl.input.mean"], CultureInfo.InvariantCulture);
        double std = double.Parse(metadata["cedsl.input.std"], CultureInfo.InvariantCulture);
        int side = int.Parse(metadata["cedsl.input.pad_to"], CultureInfo.InvariantCulture);

        using var data = FashionMnist.LoadEmbeddedSubset();
        var test = data.Test;
        byte[] pixels = test.Images.data<byte>().ToArray();
        long[] labels = test.Labels.data<long>().ToArray();
        int correct = 0, height = test.Height, width = test.Width, top = (side - height) / 2, left = (side - width) / 2;
        for (int image = 0; image < test.Count; image++)
        {
            // Zero pixels around the image, then every pixel normalized: what the training saw.
            var input = new float[side * side];
            for (int y = 0; y < side; y++)
            {
                for (int x = 0; x < side; x++)
                {
                    bool inside = y >= top && y < top + height && x >= left && x < left + width;
                    double pixel = inside ? pixels[(long)image * height * width + (y - top) * width + (x - left)] : 0;
                    input[y * side + x] = (float)((pixel / 255 - mean) / std);
                }
            }
            using var value = OrtValue.CreateTensorValueFromMemory(input, [1, 1, side, side]);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, ["input"], [value], ["logits"]);
            var logits = outputs[0].GetTensorDataAsSpan<float>();
            int predicted = 0;
            for (int c = 1; c < logits.Length; c++)
                if (logits[c] > logits[predicted]) predicted = c;
            if (predicted == labels[image]) correct++;
        }
        Assert.Equal(expected, correct);
        Assert.Contains(Invariant($"accuracy {100.0 * correct / test.Count:F2}% ({correct:N0} of {test.Count:N0} images)"), export.Output);
    }

    [Fact]
    public void Export_errors_name_the_problem_and_write_nothing()
    {
        string directory = Path.Combine(run.Root, "export-errors");
        Directory.CreateDirectory(directory);
        string folded = Path.Combine(directory, "folded.safetensors");
        CliRun.Succeeds(["fold", "--checkpoint", run.Checkpoint, "--out", folded, "--embedded", "--limit-test", "50"]);
        var before = CliRun.Snapshot(directory);

        var cases = new (string[] Args, string Message)[]
        {
            (["export", "--checkpoint", run.Checkpoint, "--embedded"], "cedsl export: error: give the file to write: --onnx OUT.onnx (an ONNX model of a checkpoint's network) or --pytorch OUT.py (a PyTorch module file), or both."),
            (["export", "--checkpoint", run.Checkpoint, "--onnx", directory, "--embedded"], $"cedsl export: error: --onnx: '{directory}' is a directory; give the file to write"),
            (["export", "--checkpoint", folded, "--onnx", folded, "--embedded"], $"cedsl export: error: --onnx: '{folded}' is the checkpoint being exported"),
            (["export", "--checkpoint", folded, "--onnx", Path.Combine(directory, "x.onnx"), "--no-fold", "--embedded"], "cedsl export: error: --no-fold: the checkpoint holds the folded network only"),
            (["export", "--checkpoint", Path.Combine(directory, "missing.safetensors"), "--onnx", Path.Combine(directory, "x.onnx")], "does not exist"),
        };
        foreach (var (args, message) in cases)
        {
            var result = CliRun.Run(args);
            Assert.Equal(1, result.ExitCode);
            Assert.Contains(message, result.Error);
            Assert.DoesNotContain("internal error", result.Error);
        }
        CliRun.AssertUnchanged(before, directory);

        // A folded checkpoint exports as it is.
        string model = Path.Combine(directory, "from-folded.onnx");
        var export = CliRun.Succeeds(["export", "--checkpoint", folded, "--onnx", model, "--embedded", "--limit-test", "50"]);
        Assert.Contains("ce-resnet20 (folded)", export.Output);
        Assert.True(File.Exists(model));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex(@"accuracy [\d.]+% \((?<correct>[\d,]+) of (?<images>[\d,]+) images\)")]
    private static partial Regex AccuracyLine();
}
