using System.Globalization;
using System.Text.RegularExpressions;
using CeDsl.Data;
using Microsoft.ML.OnnxRuntime;

namespace CeDsl.Cli.Tests;

/// <summary>
/// <c>cedsl export --onnx</c> on a checkpoint written by <c>cedsl train</c>: the model, run in ONNX Runtime with nothing
/// but its file and its metadata (normalization, padding), classifies the test images exactly as <c>cedsl eval</c> does.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed partial class ExportCommandTests(TrainedRun run)
{
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
            (["export", "--checkpoint", run.Checkpoint, "--embedded"], "cedsl export: error: give the file to write: --onnx OUT.onnx."),
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
