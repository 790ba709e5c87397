using System.Runtime.InteropServices;
using CeDsl.Platform;

namespace CeDsl.Cli.Tests;

/// <summary>
/// <c>cedsl</c> keeps the memory libtorch frees (<see cref="NativeHeap.KeepFreedMemory"/>). Seen from outside the
/// process, by the page faults of the children this test process has waited for: the settings reach allocations of
/// a process's main thread, which a test host's worker thread is not.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class NativeHeapTests
{
    /// <summary>
    /// PreResNet-29's first stage at batch 128 holds 128 x 64 x 32 x 32 floats, 32 MiB: past glibc's largest mmap
    /// threshold, so with glibc's defaults each of those activations gets fresh pages at every step. Three more steps
    /// may take some fresh pages (the managed heap, libtorch's caches), not activations' worth. Checked by breaking
    /// the call: the three steps then took 776,865 fresh pages.
    /// </summary>
    [Fact]
    public void Evaluation_and_training_steps_after_the_first_reuse_the_pages_of_activations_larger_than_glibcs_mmap_threshold()
    {
        long once = PageFaultsOf("bench", "--model", "preresnet29", "--batch", "128", "--warmup", "1", "--iterations", "1");
        long fourTimes = PageFaultsOf("bench", "--model", "preresnet29", "--batch", "128", "--warmup", "1", "--iterations", "4");

        Assert.True(fourTimes - once < 200_000,
            $"three more evaluation and training steps took {fourTimes - once:N0} fresh pages ({once:N0} for the bench with one step, {fourTimes:N0} with four)");
    }

    private static long PageFaultsOf(params string[] args)
    {
        long before = ChildrenMinorPageFaults();
        var result = CliProcess.Run(TimeSpan.FromMinutes(10), CliProcess.OneThread, args);
        Assert.True(result.ExitCode == 0, result.ToString());
        return ChildrenMinorPageFaults() - before;
    }

    private static long ChildrenMinorPageFaults()
    {
        if (getrusage(RusageChildren, out var usage) != 0)
            throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return usage.MinorFaults;
    }

    private const int RusageChildren = -1;

    [DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out Rusage usage);

    // struct rusage of 64-bit Linux: two timevals, then fourteen longs, of which ru_minflt is the fifth.
    [StructLayout(LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UserSeconds, UserMicroseconds, SystemSeconds, SystemMicroseconds;
        public long MaxResident, SharedText, UnsharedData, UnsharedStack, MinorFaults, MajorFaults;
        public long Swaps, BlockInputs, BlockOutputs, MessagesSent, MessagesReceived, Signals, VoluntarySwitches, InvoluntarySwitches;
    }
}
