using CeDsl.IO;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CeDsl.Python.Tests.Distributed;

/// <summary>
/// Three SGD steps of one small network with BN, CE (also with pooling), BD and AII (Scripts/ddp_equivalence.py,
/// float64): in one process on batches of 2B images, and under torchrun as two DistributedDataParallel ranks
/// (gloo, CPU, loopback) of B images each, with and without SyncCE/SyncBN.
/// </summary>
public sealed class DistributedTrainingRuns : IDisposable
{
    public const int Ranks = 2;

    public DistributedTrainingRuns()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("cedsl-ddp-").FullName;
        Synchronized = Path.Combine(Directory, "synchronized");
        Local = Path.Combine(Directory, "local");
        System.IO.Directory.CreateDirectory(Synchronized);
        System.IO.Directory.CreateDirectory(Local);
        var timeout = TimeSpan.FromMinutes(5);
        PythonTorch.RunScript("ddp_equivalence.py", timeout, "single", Directory, "--ranks", Ranks.ToString(System.Globalization.CultureInfo.InvariantCulture));
        PythonTorch.RunTorchrun(Ranks, "ddp_equivalence.py", timeout, "ddp", Synchronized);
        PythonTorch.RunTorchrun(Ranks, "ddp_equivalence.py", timeout, "ddp", Local, "--local-statistics");
    }

    public string Directory { get; }

    /// <summary>rank0/rank1 files of the run with SyncCE and SyncBN.</summary>
    public string Synchronized { get; }

    /// <summary>rank0/rank1 files of the run with per-rank statistics.</summary>
    public string Local { get; }

    public string Single => Path.Combine(Directory, "single.safetensors");

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

public sealed class DistributedTrainingTests(DistributedTrainingRuns runs, ITestOutputHelper output) : IClassFixture<DistributedTrainingRuns>
{
    private const double Tolerance = 1e-6;

    [Fact]
    public void Two_ranks_with_SyncCE_and_SyncBN_train_like_one_process_on_both_batches()
    {
        using var scope = NewDisposeScope();
        var single = SafeTensors.Load(runs.Single);
        var ranks = RankFiles(runs.Synchronized);
        Assert.Equal(single.Keys.Order(StringComparer.Ordinal), ranks[0].Keys.Order(StringComparer.Ordinal));
        Assert.Contains("after3.ce1.running_wm", single.Keys);
        Assert.Contains("after3.ce2.AR.running_scale", single.Keys);
        Assert.Contains("after3.bn3.num_batches_tracked", single.Keys);
        Assert.Contains("step3.grad.ce2.x_weight", single.Keys);

        double worst = 0;
        foreach (var (key, expected) in single.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            double difference = Difference(Distributed(key, ranks), expected);
            output.WriteLine($"{key,-40} {difference:E2}");
            worst = Math.Max(worst, difference);
            Assert.True(difference <= Tolerance, $"{key}: the two ranks differ from one process by {difference:E2}");
            if (!IsPerImage(key))
                Assert.True(ranks[0][key].eq(ranks[1][key]).all().item<bool>(), $"{key} differs between the ranks");
        }
        output.WriteLine($"worst {worst:E2} over {single.Count} tensors");
    }

    [Fact]
    public void Without_synchronization_the_ranks_do_not_train_like_one_process()
    {
        // What the synchronization is for, and proof that the comparison above can fail.
        using var scope = NewDisposeScope();
        var single = SafeTensors.Load(runs.Single);
        var ranks = RankFiles(runs.Local);
        foreach (string key in new[] { "step1.out", "step1.grad_x", "step1.grad.conv1.weight", "after3.ce1.running_wm", "after3.bn1.running_var" })
        {
            double difference = Difference(Distributed(key, ranks), single[key]);
            output.WriteLine($"{key,-32} {difference:E2}");
            Assert.True(difference > 1e-4, $"{key}: per-rank statistics differ from one process by only {difference:E2}");
        }
    }

    /// <summary>Per-image tensors (logits, input gradients) are split over the ranks; everything else is the same on every rank.</summary>
    private static bool IsPerImage(string key) => key.EndsWith(".out", StringComparison.Ordinal) || key.EndsWith(".grad_x", StringComparison.Ordinal);

    /// <summary>
    /// The ranks' value of <paramref name="key"/> as one process would hold it: per-image tensors concatenated
    /// in rank order; input gradients divided by the rank count (the single process's loss is divided by it so
    /// that its parameter gradients are those DDP averages to); everything else rank 0's.
    /// </summary>
    private static Tensor Distributed(string key, IReadOnlyList<IReadOnlyDictionary<string, Tensor>> ranks)
    {
        if (!IsPerImage(key))
            return ranks[0][key];
        var joined = cat(ranks.Select(r => r[key]).ToList(), 0);
        return key.EndsWith(".grad_x", StringComparison.Ordinal) ? joined / DistributedTrainingRuns.Ranks : joined;
    }

    private static double Difference(Tensor actual, Tensor expected)
    {
        Assert.True(actual.shape.SequenceEqual(expected.shape));
        Assert.Equal(expected.dtype, actual.dtype);
        return (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>();
    }

    private static IReadOnlyList<IReadOnlyDictionary<string, Tensor>> RankFiles(string directory) =>
        Enumerable.Range(0, DistributedTrainingRuns.Ranks)
            .Select(rank => SafeTensors.Load(Path.Combine(directory, $"rank{rank}.safetensors"))).ToList();
}
