using CeDsl.Layers;
using CeDsl.Tests.Shared;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>Native memory does not grow across training steps of a network whose CEs run on the CPU kernels.</summary>
[Collection(SerialCollection.Name)]
public class ChannelEquilibriumMemoryTests(ITestOutputHelper output)
{
    private const int WarmUpSteps = 50;
    private const int MeasuredSteps = 300;

    /// <summary>
    /// As the trainer's memory test: growth of the native memory in use over 300 steps after 50 warm-up
    /// steps below 16 MiB. Each CE's input, output and input gradient here are 8 x 32 x 16 x 16 floats (256 KiB),
    /// so leaking one of them per step adds 75 MiB; leaked handles show in the live-tensor count.
    /// </summary>
    private const long GrowthBoundBytes = 16L << 20;

    [Fact]
    public void Training_steps_on_the_kernels_keep_native_memory_and_live_tensors_constant()
    {
        manual_seed(1);
        var first = new ChannelEquilibrium(32);
        var second = new ChannelEquilibrium(32);
        using var network = Sequential(
            ("conv1", Conv2d(3, 32, 3, padding: 1)), ("bn1", BatchNorm2d(32)), ("ce1", first), ("relu1", ReLU()),
            ("conv2", Conv2d(32, 32, 3, padding: 1)), ("bn2", BatchNorm2d(32)), ("ce2", second), ("relu2", ReLU()),
            ("pool", AdaptiveAvgPool2d(1)), ("flatten", Flatten()), ("fc", Linear(32, 10)));
        using var optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9);
        using var images = randn(8, 3, 16, 16);
        using var labels = randint(10, [8], ScalarType.Int64);
        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            functional.cross_entropy(network.call(images), labels).backward();
            optimizer.step();
        }

        for (int step = 0; step < WarmUpSteps; step++)
            Step();
        Assert.True(first.RanOnKernels && second.RanOnKernels);
        long inUseBefore = SettledInUseBytes(), liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int step = 0; step < MeasuredSteps; step++)
            Step();
        long inUseAfter = SettledInUseBytes(), liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        output.WriteLine($"malloc in use {inUseBefore >> 10} KiB after {WarmUpSteps} steps, {inUseAfter >> 10} KiB after {MeasuredSteps} more; live tensors {liveBefore} -> {liveAfter}");
        Assert.Equal(liveBefore, liveAfter);
        Assert.True(inUseAfter - inUseBefore < GrowthBoundBytes, $"native memory in use grew by {(inUseAfter - inUseBefore) >> 10} KiB over {MeasuredSteps} steps");
    }

    private static long SettledInUseBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return MallocStatistics.InUseBytes();
    }
}
