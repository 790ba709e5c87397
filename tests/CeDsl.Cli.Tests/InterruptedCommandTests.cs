namespace CeDsl.Cli.Tests;

/// <summary>
/// A command other than <c>train</c> stopped by SIGINT or SIGTERM ends at once with one line and the signal's
/// exit code (what it writes, it writes atomically); <c>train</c> saves first (<see cref="RunSafetyTests"/>).
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class InterruptedCommandTests
{
    [Theory]
    [InlineData(CliProcess.SigInt, 130, "SIGINT (Ctrl+C)")]
    [InlineData(CliProcess.SigTerm, 143, "SIGTERM")]
    public void A_signal_ends_bench_with_one_line_and_the_signals_code(int signal, int exitCode, string name)
    {
        using var bench = CliProcess.Start("bench", "--model", "resnet20", "--batch", "2", "--iterations", "1000000", "--warmup", "1");
        bench.WaitForOutput(line => line.StartsWith("batch 2, ", StringComparison.Ordinal));

        bench.Signal(signal);
        var result = bench.WaitForExit();

        Assert.True(result.ExitCode == exitCode, result.ToString());
        Assert.Equal($"cedsl bench: interrupted by {name}\n", result.Error);
    }
}
