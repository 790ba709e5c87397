using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace CeDsl.Kernels;

/// <summary>
/// A parallel loop for <see cref="CpuKernels"/> on libtorch's own OpenMP threads: <c>GOMP_parallel</c>
/// of the libgomp that libtorch_cpu links, the entry point of every <c>#pragma omp parallel</c> in
/// libtorch. After each libtorch operator its worker threads spin for a few milliseconds waiting for
/// the next one; .NET thread-pool threads started then would share the cores with them (3-10 ms more
/// per folded CE after a convolution, docs/benchmarks/folding.md), while the spinning workers take
/// this loop at once. Where that entry point is missing (another OpenMP runtime), .NET's
/// <see cref="Parallel"/> loop with <c>torch.get_num_threads()</c> threads.
/// </summary>
internal static unsafe class ParallelLoop
{
    private static readonly delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> OpenMpParallel = FindOpenMpParallel();

    /// <summary>Whether the loops run on libtorch's OpenMP threads (else on .NET's thread pool).</summary>
    internal static bool OnLibTorchThreads => OpenMpParallel != null;

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
    internal static void For(long count, Action<long> body, long workPerItem = 0)
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
        if (OpenMpParallel == null)
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        var loop = new Loop(count, body);
        var handle = GCHandle.Alloc(loop);
        try
        {
            OpenMpParallel(&RunTeamMember, (void*)GCHandle.ToIntPtr(handle), (uint)threads, 0);
        }
        finally
        {
            handle.Free();
        }
        if (loop.Error is { } error)
            throw new AggregateException(error);
    }

    [UnmanagedCallersOnly]
    private static void RunTeamMember(void* state)
    {
        var loop = (Loop)GCHandle.FromIntPtr((nint)state).Target!;
        try
        {
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

    private static delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> FindOpenMpParallel()
    {
        // libtorch_cpu is loaded by then (the kernels only run on tensors); a lookup through its handle
        // also searches the libraries it depends on, libgomp among them.
        if (!NativeLibrary.TryLoad("libtorch_cpu", typeof(ParallelLoop).Assembly, null, out var library))
            return null;
        return NativeLibrary.TryGetExport(library, "GOMP_parallel", out var entry)
            ? (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)entry
            : null;
    }

    private sealed class Loop(long count, Action<long> body)
    {
        public readonly long Count = count;
        public readonly Action<long> Body = body;
        public long Next;
        public Exception? Error;
    }
}
