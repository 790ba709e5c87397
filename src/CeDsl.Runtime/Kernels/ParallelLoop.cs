using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace CeDsl.Kernels;

/// <summary>
/// A parallel loop for <see cref="CpuKernels"/> on libtorch's own OpenMP threads: <c>GOMP_parallel</c>
/// of the libgomp that libtorch_cpu links, the entry point of every <c>#pragma omp parallel</c> in
/// libtorch. After each libtorch operator its worker threads spin for a few milliseconds waiting for
/// the next one; .NET thread-pool threads started then would share the cores with them (3-10 ms more
/// per folded CE after a convolution, docs/benchmarks/folding.md), while the spinning workers take
/// this loop at once. Where those entry points are missing (another OpenMP runtime), the same team
/// of <c>torch.get_num_threads()</c> members runs on .NET's thread pool (<see cref="Parallel"/>). Items are taken one at a time by
/// whichever thread is free (<see cref="For"/>) or in one contiguous share per thread (<see cref="ForShares"/>).
/// </summary>
internal static unsafe class ParallelLoop
{
    private static readonly delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> OpenMpParallel =
        (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)FindOpenMp("GOMP_parallel");
    private static readonly delegate* unmanaged<int> OpenMpThreadNumber = (delegate* unmanaged<int>)FindOpenMp("omp_get_thread_num");
    private static readonly delegate* unmanaged<int> OpenMpTeamSize = (delegate* unmanaged<int>)FindOpenMp("omp_get_num_threads");

    /// <summary>Whether the loops run on libtorch's OpenMP threads (else on .NET's thread pool).</summary>
    internal static bool OnLibTorchThreads => OpenMpParallel != null && OpenMpThreadNumber != null && OpenMpTeamSize != null;

    /// <summary>
    /// Multiply-adds (or comparable steps) below which a loop runs on the calling thread alone: waking the
    /// other threads and waiting for them costs a few microseconds.
    /// </summary>
    private const long ParallelWork = 1L << 15;

    /// <summary>
    /// Runs <paramref name="body"/> for 0 .. <paramref name="count"/> - 1, items taken one at a time by whichever
    /// thread is free; on the calling thread alone for one item, one thread, or less work in all than is worth
    /// handing out (<paramref name="workPerItem"/>: multiply-adds or comparable steps per item; 0 for unknown).
    /// An exception in an item stops the loop and reaches the caller in an <see cref="AggregateException"/>.
    /// </summary>
    internal static void For(long count, Action<long> body, long workPerItem = 0) => Run(count, body, workPerItem, inShares: false);

    /// <summary>
    /// <see cref="For"/> with each thread taking one contiguous share of the items (thread t of T the items
    /// t * count / T to (t + 1) * count / T - 1), as libtorch's own parallel loops split a range. For a pass over
    /// a batch that libtorch's operator before it wrote in the same split: each thread then reads the samples its
    /// own core's cache holds (the unfolded CE in evaluation, ResNet-20 at batch 16: x1.137 its BN network instead
    /// of x1.168 with items taken one at a time, docs/benchmarks/ce-training.md). Items of unequal cost are better
    /// served by <see cref="For"/>.
    /// </summary>
    internal static void ForShares(long count, Action<long> body, long workPerItem = 0) => Run(count, body, workPerItem, inShares: true);

    private static void Run(long count, Action<long> body, long workPerItem, bool inShares)
    {
        int threads = Math.Max(1, get_num_threads());
        if (threads == 1 || count == 1 || (workPerItem > 0 && count * workPerItem < ParallelWork))
        {
            try
            {
                for (long item = 0; item < count; item++)
                    body(item);
            }
            catch (Exception inline)
            {
                throw new AggregateException(inline);
            }
            return;
        }
        var loop = new Loop(count, body, inShares);
        if (OnLibTorchThreads)
        {
            var handle = GCHandle.Alloc(loop);
            try
            {
                OpenMpParallel(&RunTeamMember, (void*)GCHandle.ToIntPtr(handle), (uint)threads, 0);
            }
            finally
            {
                handle.Free();
            }
        }
        else
        {
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, member => Work(loop, member, threads));
        }
        if (loop.Error is { } error)
            throw new AggregateException(error);
    }

    [UnmanagedCallersOnly]
    private static void RunTeamMember(void* state) =>
        Work((Loop)GCHandle.FromIntPtr((nint)state).Target!, OpenMpThreadNumber(), OpenMpTeamSize());

    /// <summary>What member <paramref name="member"/> of a team of <paramref name="team"/> threads does of <paramref name="loop"/>.</summary>
    private static void Work(Loop loop, long member, long team)
    {
        try
        {
            if (loop.InShares)
            {
                for (long item = member * loop.Count / team; item < (member + 1) * loop.Count / team && Volatile.Read(ref loop.Next) < loop.Count; item++)
                    loop.Body(item);
                return;
            }
            for (long item = Interlocked.Increment(ref loop.Next) - 1; item < loop.Count; item = Interlocked.Increment(ref loop.Next) - 1)
                loop.Body(item);
        }
        catch (Exception error)
        {
            // No exception may cross into native code: keep the first, stop handing out items.
            Interlocked.CompareExchange(ref loop.Error, error, null);
            Interlocked.Exchange(ref loop.Next, loop.Count);
        }
    }

    /// <summary>The address of an entry point of the OpenMP runtime libtorch uses, or 0.</summary>
    private static nint FindOpenMp(string name)
    {
        // libtorch_cpu is loaded by then (the kernels only run on tensors); a lookup through its handle
        // also searches the libraries it depends on, libgomp among them.
        if (!NativeLibrary.TryLoad("libtorch_cpu", typeof(ParallelLoop).Assembly, null, out var library))
            return 0;
        return NativeLibrary.TryGetExport(library, name, out var entry) ? entry : 0;
    }

    private sealed class Loop(long count, Action<long> body, bool inShares)
    {
        public readonly long Count = count;
        public readonly Action<long> Body = body;
        public readonly bool InShares = inShares;
        /// <summary>The next item to hand out; <see cref="Count"/> once an item has failed (which stops shares too).</summary>
        public long Next;
        public Exception? Error;
    }
}
