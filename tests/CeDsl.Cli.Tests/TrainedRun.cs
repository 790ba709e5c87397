namespace CeDsl.Cli.Tests;

/// <summary>
/// One quick ce-resnet20 run of two epochs, trained once through the command line and shared by
/// the tests that need a trained checkpoint.
/// </summary>
public sealed class TrainedRun : IDisposable
{
    public const int Epochs = 2;

    public TrainedRun()
    {
        Root = CliRun.TemporaryDirectory();
        Directory = Path.Combine(Root, "uninterrupted");
        Training = CliRun.Succeeds(["train", "--model", "ce-resnet20", "--epochs", $"{Epochs}", "--seed", "3", .. CliRun.QuickTraining, "--out", Directory]);
    }

    /// <summary>A temporary directory for the tests' own files; deleted afterwards.</summary>
    public string Root { get; }

    /// <summary>The run directory.</summary>
    public string Directory { get; }

    public string Checkpoint => Path.Combine(Directory, "checkpoint.safetensors");

    public string Metrics => Path.Combine(Directory, "metrics.csv");

    /// <summary>What <c>cedsl train</c> printed.</summary>
    internal CliResult Training { get; }

    public void Dispose() => System.IO.Directory.Delete(Root, recursive: true);
}
