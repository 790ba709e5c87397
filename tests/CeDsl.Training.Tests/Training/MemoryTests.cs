using CeDsl.Data;
using CeDsl.Training;
using TorchSharp;
using CeDsl.Tests.Shared;
using Xunit.Abstractions;

namespace CeDsl.Training.Tests.Training;

/// <summary>Native memory does not grow across training steps.</summary>
[Collection(SerialTrainingCollection.Name)]
public class MemoryTests(ITestOutputHelper output)
{
    private const int WarmUpSteps = 100;
    private const int MeasuredSteps = 300;

    /// <summary>
    /// Bound on the growth of the native memory in use (<see cref="MallocStatistics"/>) over 300 steps
    /// after 100 warm-up steps: 16 MiB (warm-up covers allocator arenas, gradients, momentum buffers and oneDNN caches). Every
    /// activation of this net at batch 32 is at least 200 KiB (conv2's output, 32x32x7x7 floats;
    /// conv1's is 1.6 MB), so leaking a single activation per step adds at least 60 MB over 300
    /// steps. Leaked tensor handles of any size show up in the live-tensor count, which must not move.
    /// </summary>
    private const long GrowthBoundBytes = 16L << 20;

    [Fact]
    public void Three_hundred_training_steps_keep_live_tensors_constant_and_native_memory_bounded()
    {
        SettledInUseBytes(); // before the warm-up: the parallel tests' leftovers are finalized now, not during the measurement
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var model = TinyConvNet.Create(1, width: 16);
        using var trainer = new Trainer(model, "TinyConvNet", data.Train, new TrainingOptions { Epochs = 100, BatchSize = 32, Seed = 1 });
        using var stop = new CancellationTokenSource();
        long inUseBefore = 0, inUseAfter = 0, rssBefore = 0, rssAfter = 0, liveBefore = 0, liveAfter = 0;
        trainer.StepProgress = new ActionProgress<TrainingStep>(step =>
        {
            if (step.GlobalStep == WarmUpSteps)
                (inUseBefore, rssBefore, liveBefore) = (SettledInUseBytes(), MallocStatistics.ResidentBytes(), DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            if (step.GlobalStep == WarmUpSteps + MeasuredSteps)
            {
                (inUseAfter, rssAfter, liveAfter) = (SettledInUseBytes(), MallocStatistics.ResidentBytes(), DisposeScopeManager.Statistics.ThreadTotalLiveCount);
                stop.Cancel();
            }
        });

        Assert.Throws<OperationCanceledException>(() => trainer.Run(stop.Token));

        output.WriteLine($"malloc in use {inUseBefore >> 10} KiB after {WarmUpSteps} steps, {inUseAfter >> 10} KiB after {MeasuredSteps} more: growth {(inUseAfter - inUseBefore) >> 10} KiB (bound {GrowthBoundBytes >> 10} KiB); VmRSS {rssBefore >> 10} -> {rssAfter >> 10} KiB; live tensors {liveBefore} -> {liveAfter}");
        Assert.Equal(WarmUpSteps + MeasuredSteps, trainer.Position.GlobalStep);
        Assert.Equal(liveBefore, liveAfter);
        Assert.True(inUseAfter - inUseBefore < GrowthBoundBytes, $"native memory in use grew by {(inUseAfter - inUseBefore) >> 10} KiB over {MeasuredSteps} steps");
    }

    /// <summary>
    /// Native memory in use after a full garbage collection: this test runs after the parallel ones, whose
    /// undisposed tensors (tens of thousands) would otherwise be finalized, and freed, at arbitrary points of
    /// the measurement.
    /// </summary>
    private static long SettledInUseBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return MallocStatistics.InUseBytes();
    }
}
