using System.Globalization;
using System.Text.RegularExpressions;

namespace CeDsl.Cli.Tests;

/// <summary>
/// eval and fold on plain state dicts, which do not name their network: a CE-ResNet-20 saved by PyTorch's torch.save
/// as the CE authors' checkpoints are (DataParallel's "module." keys inside {"state_dict": ...}), and the same state
/// in safetensors.
/// </summary>
public sealed class PyTorchFileTests
{
    private static readonly string PyTorchCheckpoint = Path.Combine(AppContext.BaseDirectory, "Fixtures", "ce_resnet20_dataparallel.pth");
    private static readonly string SafeTensorsStateDict = Path.Combine(AppContext.BaseDirectory, "Fixtures", "ce_resnet20_pytorch.safetensors");

    [Fact]
    public void Eval_scores_a_torch_save_checkpoint_given_its_network_like_the_same_state_in_safetensors()
    {
        var pytorch = CliRun.Succeeds("eval", "--checkpoint", PyTorchCheckpoint, "--network", "ce-resnet20", "--embedded", "--limit-test", "50");
        var safetensors = CliRun.Succeeds("eval", "--checkpoint", SafeTensorsStateDict, "--network", "ce-resnet20", "--embedded", "--limit-test", "50");

        Assert.Contains($"model: ce-resnet20 from {PyTorchCheckpoint}", pytorch.Output);
        Assert.Equal(ResultLine(safetensors.Output), ResultLine(pytorch.Output));
    }

    [Fact]
    public void Fold_folds_a_torch_save_checkpoint_given_its_network()
    {
        string directory = CliRun.TemporaryDirectory();
        try
        {
            string folded = Path.Combine(directory, "folded.safetensors");
            var fold = CliRun.Succeeds("fold", "--checkpoint", PyTorchCheckpoint, "--network", "ce-resnet20", "--out", folded, "--embedded", "--limit-test", "50");
            Assert.Contains("same prediction for 50 (100.00%)", fold.Output);

            var trained = CliRun.Succeeds("eval", "--checkpoint", PyTorchCheckpoint, "--network", "ce-resnet20", "--embedded", "--limit-test", "50");
            var inference = CliRun.Succeeds("eval", "--checkpoint", folded, "--embedded", "--limit-test", "50");
            Assert.Contains("model: ce-resnet20 (folded)", inference.Output);
            var (trainedLoss, trainedAccuracy) = LossAndAccuracy(trained.Output);
            var (foldedLoss, foldedAccuracy) = LossAndAccuracy(inference.Output);
            Assert.Equal(trainedAccuracy, foldedAccuracy);
            Assert.Equal(trainedLoss, foldedLoss, 1e-3);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void A_plain_state_dict_without_its_network_is_refused_naming_the_option()
    {
        var result = CliRun.Run("eval", "--checkpoint", PyTorchCheckpoint, "--embedded");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("cedsl eval: error: ", result.Error);
        Assert.Contains("is not a CeDsl checkpoint", result.Error);
        Assert.Contains("--network NAME", result.Error);
    }

    [Fact]
    public void A_torch_save_checkpoint_of_another_network_is_a_strict_mismatch()
    {
        var result = CliRun.Run("eval", "--checkpoint", PyTorchCheckpoint, "--network", "resnet20", "--embedded");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"State dict '{PyTorchCheckpoint}' does not match module", result.Error);
        Assert.Contains("unexpected in the file", result.Error);
        Assert.Contains(".ce.x_weight", result.Error);
    }

    private static string ResultLine(string output) => output.Split('\n').Single(l => l.StartsWith("test loss ", StringComparison.Ordinal));

    private static (double Loss, string Accuracy) LossAndAccuracy(string output)
    {
        var match = Regex.Match(output, @"test loss (\d+\.\d+), (accuracy .* images\))");
        Assert.True(match.Success, output);
        return (double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), match.Groups[2].Value);
    }
}
