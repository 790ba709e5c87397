using CeDsl.Training;
using TorchSharp;
using CeDsl.Tests.Shared;
using Xunit.Abstractions;

namespace CeDsl.Cli.Tests;

/// <summary>Native memory does not grow across the steps of <c>cedsl train</c>.</summary>
[Collection(TrainingCollection.Name)]
public sealed class MemoryTests(ITestOutputHelper output) : IDisposable
{
    private const int WarmUpSteps = 100;
    private const int MeasuredSteps = 300;

    /// <summary>
    /// Bound on the growth of the native memory in use (<see cref="MallocStatistics"/>) over 300 steps of resnet20 at batch 2 after 100 warm-up
    /// steps: 16 MiB, as in the library's Trainer test. One activation of the stem alone is
    /// 2 x 16 x 32 x 32 floats = 128 KiB, and a step makes dozens, so leaking even one per step adds
    /// 37.5 MiB over 300 steps. Leaked tensor handles of any size show up in the live-tensor count,
    /// which must not move. This covers the command's path (zoo network, subset, padding, per-step
    /// reports); the Trainer alone is bounded by CeDsl.Runtime.Tests' MemoryTests and CE's live
    /// tensors by ChannelEquilibriumTests. The BN network keeps this test short: at batch 2 a CE-ResNet-20
    /// step costs about four times a ResNet-20 step (CE's per-step cost does not shrink with the batch).
    /// </summary>
    private const long GrowthBoundBytes = 16L << 20;

    private readonly string _directory = CliRun.TemporaryDirectory();

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Three_hundred_training_steps_keep_live_tensors_constant_and_native_memory_bounded()
    {
        long inUseBefore = 0, inUseAfter = 0, rssBefore = 0, rssAfter = 0, liveBefore = 0, liveAfter = 0, steps = 0;
        var observer = new StepObserver(step =>
        {
            steps = step.GlobalStep;
            if (step.GlobalStep == WarmUpSteps)
                (inUseBefore, rssBefore, liveBefore) = (MallocStatistics.InUseBytes(), MallocStatistics.ResidentBytes(), DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            if (step.GlobalStep == WarmUpSteps + MeasuredSteps)
                (inUseAfter, rssAfter, liveAfter) = (MallocStatistics.InUseBytes(), MallocStatistics.ResidentBytes(), DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        });
        var root = new System.CommandLine.RootCommand { Commands.TrainCommand.Create(observer) };

        // One epoch of exactly 400 steps, so no evaluation or checkpoint falls inside the measurement.
        // One intra-op thread: at batch 2 a second one only adds synchronisation, which on a busy
        // machine multiplies the step time by four or more.
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        CliResult result;
        try
        {
            result = CliRun.Run(root, "train", "--model", "resnet20", "--embedded", "--limit-train", $"{2 * (WarmUpSteps + MeasuredSteps)}",
                "--batch", "2", "--epochs", "1", "--limit-test", "10", "--out", Path.Combine(_directory, "run"));
        }
        finally
        {
            torch.set_num_threads(threads);
        }

        Assert.True(result.ExitCode == 0, result.ToString());
        output.WriteLine($"malloc in use {inUseBefore >> 10} KiB after {WarmUpSteps} steps, {inUseAfter >> 10} KiB after {MeasuredSteps} more: growth {(inUseAfter - inUseBefore) >> 10} KiB (bound {GrowthBoundBytes >> 10} KiB); VmRSS {rssBefore >> 10} -> {rssAfter >> 10} KiB; live tensors {liveBefore} -> {liveAfter}");
        Assert.Equal(WarmUpSteps + MeasuredSteps, steps);
        Assert.Equal(liveBefore, liveAfter);
        Assert.True(inUseAfter - inUseBefore < GrowthBoundBytes, $"native memory in use grew by {(inUseAfter - inUseBefore) >> 10} KiB over {MeasuredSteps} steps");
    }

    private sealed class StepObserver(Action<TrainingStep> report) : IProgress<TrainingStep>
    {
        public void Report(TrainingStep value) => report(value);
    }
}
