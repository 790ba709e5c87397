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
