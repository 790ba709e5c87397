using System.Globalization;
using CeDsl.Training;

namespace CeDsl.Cli.Tests;

/// <summary>cedsl train on networks with selective convolutions: the reference schedule and --select-gamma.</summary>
public class SelectiveTrainingTests
{
    [Fact]
    public void PruningOnlyTrainingReleasesChannelsAndReportsWhatIsSaved()
    {
        var directory = CliRun.TemporaryDirectory();
        try
        {
            var result = CliRun.Succeeds(["train", "--model", "prune-preresnet29", "--epochs", "2", "--select-gamma", "0.3",
                "--out", directory, .. CliRun.QuickTraining]);
            Assert.Contains("selective convolutions: gamma 0.3, dealloc and realloc after each of the first 1 epochs, shift weight decay 0.00001", result.Output);
            var released = System.Text.RegularExpressions.Regex.Match(result.Output, @"selective, after epoch 1: released (\d+), re-allocated (\d+) channels");
            Assert.True(released.Success, result.Output);
            Assert.True(int.Parse(released.Groups[1].Value) > 0, result.Output);
            Assert.Equal("0", released.Groups[2].Value); // K = 0: pruning only
            Assert.DoesNotContain("after epoch 2:", result.Output); // the schedule stops at half of the epochs
            Assert.Matches(@"selective: [\d,]+ of 1,776 input channels open \([\d.]+ %\); closed channels free [1-9][\d,]* convolution weights", result.Output);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void FoldWritesAPhysicallySmallerPrunedNetworkThatEvalScoresLikeTheTrainedOne()
    {
        var directory = CliRun.TemporaryDirectory();
        try
        {
            CliRun.Succeeds(["train", "--model", "prune-preresnet29", "--epochs", "2", "--select-gamma", "0.3", "--seed", "4",
                "--out", directory, .. CliRun.QuickTraining]);
            string checkpoint = Path.Combine(directory, "checkpoint.safetensors"), folded = Path.Combine(directory, "folded.safetensors");
            var trainedInfo = Checkpoint.ReadInfo(checkpoint);

            var fold = CliRun.Succeeds("fold", "--checkpoint", checkpoint, "--out", folded, "--embedded", "--limit-test", "50");

            var parameters = System.Text.RegularExpressions.Regex.Match(fold.Output, @"wrote .*: ([\d,]+) parameters \(trained network: ([\d,]+)\)");
            Assert.True(parameters.Success, fold.Output);
            long Count(int group) => long.Parse(parameters.Groups[group].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
            Assert.True(Count(1) < Count(2), fold.Output);
            var foldedInfo = Checkpoint.ReadInfo(folded);
            Assert.Equal("prune-preresnet29/folded", foldedInfo.Architecture);
            long Elements(CheckpointInfo info, string suffix) =>
                info.ModelTensors.Where(t => t.Name.EndsWith(suffix, StringComparison.Ordinal)).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
            Assert.True(Elements(foldedInfo, ".conv.weight") < Elements(trainedInfo, ".conv.weight"));
            Assert.True(new FileInfo(folded).Length < new FileInfo(checkpoint).Length);

            var trained = CliRun.Succeeds("eval", "--checkpoint", checkpoint, "--embedded", "--limit-test", "50");
            var inference = CliRun.Succeeds("eval", "--checkpoint", folded, "--embedded", "--limit-test", "50");
            Assert.Contains("model: prune-preresnet29 (folded)", inference.Output);
            Assert.Equal(Accuracy(trained.Output), Accuracy(inference.Output));

            // summary and bench read checkpoints too: the folded network's smaller shapes, side by side with the trained one.
            var summary = CliRun.Succeeds("summary", "--checkpoint", folded);
            Assert.Contains("prune-preresnet29 (folded) (PruningPreResNet29.Folded)", summary.Output);
            Assert.Contains($"Parameters: {parameters.Groups[1].Value} ", summary.Output);
            Assert.Contains("PrunedSelectiveConv2d", summary.Output);
            var bench = CliRun.Succeeds("bench", "--checkpoint", checkpoint, folded, "--batch", "2", "--iterations", "1", "--warmup", "1");
            var rows = bench.Output.Split('\n').Where(l => l.StartsWith(directory, StringComparison.Ordinal)).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
            Assert.Equal([checkpoint, folded], rows.Select(r => r[0]));
            Assert.Equal([parameters.Groups[2].Value, parameters.Groups[1].Value], rows.Select(r => r[2]));
            Assert.All(rows, r => Assert.Equal("-", r[5]));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string Accuracy(string evalOutput)
    {
        var match = System.Text.RegularExpressions.Regex.Match(evalOutput, @"test loss \d+\.\d+, (accuracy .* images\))");
        Assert.True(match.Success, evalOutput);
        return match.Groups[1].Value;
    }

    [Fact]
    public void SelectGammaIsRefusedForANetworkWithoutSelectiveConvolutions()
    {
        var directory = CliRun.TemporaryDirectory();
        try
        {
            var result = CliRun.Run(["train", "--model", "resnet20", "--epochs", "1", "--select-gamma", "0.1", "--out", directory, .. CliRun.QuickTraining]);
            Assert.Equal(1, result.ExitCode);
            Assert.Contains("--select-gamma: resnet20 has no selective convolutions", result.Error);
            Assert.Equal(1, CliRun.Run(["train", "--model", "prune-preresnet29", "--select-gamma", "1.5", "--out", directory, .. CliRun.QuickTraining]).ExitCode);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
