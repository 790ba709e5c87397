using CeDsl.Kernels;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Kernels;

/// <summary>The kernels' parallel loop on libtorch's OpenMP threads.</summary>
public class ParallelLoopTests
{
    [Fact]
    public void Linux_libtorch_lends_its_OpenMP_threads()
    {
        using var _ = ones(1);
        Assert.Equal(OperatingSystem.IsLinux(), ParallelLoop.OnLibTorchThreads);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4097)]
    public void Every_item_runs_exactly_once(int count)
    {
        var runs = new int[count];
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();

        ParallelLoop.For(count, item =>
        {
            Interlocked.Increment(ref runs[item]);
            threads[Environment.CurrentManagedThreadId] = true;
            Thread.SpinWait(2000);
        });

        Assert.All(runs, run => Assert.Equal(1, run));
        Assert.InRange(threads.Count, 1, Math.Max(1, get_num_threads()));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(4097)]
    public void In_shares_every_item_runs_once_and_each_thread_takes_one_contiguous_range(int count)
    {
        var runs = new int[count];
        var threadOf = new int[count];

        ParallelLoop.ForShares(count, item =>
        {
            Interlocked.Increment(ref runs[item]);
            threadOf[item] = Environment.CurrentManagedThreadId;
            Thread.SpinWait(2000);
        });

        Assert.All(runs, run => Assert.Equal(1, run));
        // Contiguous shares: the thread changes between neighbouring items at most once per extra thread.
        int changes = Enumerable.Range(1, count - 1).Count(item => threadOf[item] != threadOf[item - 1]);
        int threads = threadOf.Distinct().Count();
        Assert.InRange(threads, 1, Math.Max(1, get_num_threads()));
        Assert.Equal(threads - 1, changes);
        if (ParallelLoop.OnLibTorchThreads && get_num_threads() > 1)
            Assert.True(threads > 1, "the shares ran on one thread"); // an OpenMP team runs every share
    }

    [Fact]
    public void An_exception_in_a_share_reaches_the_caller_and_stops_the_other_shares()
    {
        // Item 10 is in the first share; the shares after it hold at least half of the items, and would run them all
        // if they did not stop.
        long ran = ItemsRunWhenItem10Throws(ParallelLoop.ForShares);

        Assert.True(ran < ItemCount / 2, $"{ran} of {ItemCount} items ran: the loop did not stop at item 10's exception");
    }

    [Fact]
    public void A_loop_with_little_work_runs_on_the_calling_thread()
    {
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        int runs = 0;

        ParallelLoop.For(64, item =>
        {
            Interlocked.Increment(ref runs);
            threads[Environment.CurrentManagedThreadId] = true;
        }, workPerItem: 16);

        Assert.Equal(64, runs);
        Assert.Equal([Environment.CurrentManagedThreadId], threads.Keys);
    }

    [Fact]
    public void An_exception_in_an_item_reaches_the_caller_and_stops_the_loop()
    {
        long ran = ItemsRunWhenItem10Throws(ParallelLoop.For);

        Assert.True(ran < ItemCount, $"{ran} of {ItemCount} items ran: the loop did not stop at item 10's exception");
    }

    private const int ItemCount = 10_000;

    /// <summary>
    /// Runs <see cref="ItemCount"/> items through <paramref name="loop"/>, item 10 throwing, asserts that its exception
    /// reaches the caller, and returns how many items ran. Every item but the failing one takes a millisecond, so all
    /// of them would take seconds: far longer than the first throw of a process (milliseconds) takes to reach the
    /// loop. With items that cost nothing, another thread could finish them all before the exception is caught.
    /// </summary>
    private static long ItemsRunWhenItem10Throws(Action<long, Action<long>, long> loop)
    {
        long ran = 0;

        var error = Assert.Throws<AggregateException>(() => loop(ItemCount, item =>
        {
            Interlocked.Increment(ref ran);
            if (item == 10)
                throw new InvalidOperationException("item 10");
            Thread.Sleep(1);
        }, 0));

        Assert.Contains(error.InnerExceptions, inner => inner.Message == "item 10");
        return Interlocked.Read(ref ran);
    }
}
