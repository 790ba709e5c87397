using CeDsl.Bench;
using System.Diagnostics;
using System.Globalization;
using CeDsl.Layers;
using CeDsl.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training.Benchmarks;

/// <summary>The times of one variant (BN network, CE network, ...) of a case: the median step of every run.</summary>
internal sealed record VariantTimes(string Name, IReadOnlyList<double> WallMs, IReadOnlyList<double> CpuMs, double PageFaults);

/// <summary>A case's variants, the baseline first.</summary>
internal sealed record StepResult(BenchCase Case, long[] Input, IReadOnlyList<VariantTimes> Variants, int WarmUpRounds)
{
    public double BaselineMs => Statistics.Median(Variants[0].WallMs);

    /// <summary>Per run, a variant's median step over the baseline's of the same run.</summary>
    public List<double> Ratios(VariantTimes variant) => variant.WallMs.Zip(Variants[0].WallMs, (time, baseline) => time / baseline).ToList();

    public IEnumerable<string> Describe() =>
        Variants.Select(v => string.Create(CultureInfo.InvariantCulture,
            $"{Case}: {v.Name} {Statistics.Median(v.WallMs):F1} ms (runs {Statistics.Range(v.WallMs, "F1")}), x{Statistics.Median(Ratios(v)):F3}"));
}

/// <summary>
/// Training steps (forward, cross-entropy, backward, SGD with momentum) or evaluation forwards (no
/// gradient) of zoo networks on random images, every variant of a case in one process: warm-up rounds
/// until no variant takes fresh memory pages, then runs in which each variant times its steps in
/// turn (each run starting one variant later), so that a busy machine slows them alike.
/// </summary>
internal static class NetworkSteps
{
    private const int MaxWarmUpRounds = 12;

    public static StepResult Measure(BenchCase benchCase, Options options)
    {
        var names = new List<(string Label, string Network, bool Operators)>
        {
            ("BN", benchCase.Family, false),
            ("CE", "ce-" + benchCase.Family, false),
        };
        if (options.Operators)
            names.Add(("CE, operators", "ce-" + benchCase.Family, true));
        var entry = Zoo.Entries.FirstOrDefault(e => e.Name == benchCase.Family)
            ?? throw new ArgumentException($"'{benchCase.Family}' is not a zoo network.");
        var input = entry.InputShape.ToArray();
        manual_seed(1);
        using var images = randn([benchCase.Batch, .. input]);
        using var labels = randint(entry.Classes, [benchCase.Batch], ScalarType.Int64);
        var variants = names.Select(n => new Variant(n.Label, n.Network, n.Operators, benchCase.Training, images, labels)).ToList();
        try
        {
            int warmUpRounds = 0;
            for (bool settled = false; warmUpRounds < MaxWarmUpRounds && !(settled && warmUpRounds >= 2); warmUpRounds++)
                settled = variants.Select(v => v.Time().PageFaults).ToList().All(faults => faults < PageFaults.Settled);

            var wall = variants.ToDictionary(v => v, _ => new List<double>());
            var cpu = variants.ToDictionary(v => v, _ => new List<double>());
            var faults = variants.ToDictionary(v => v, _ => new List<double>());
            for (int run = 0; run < options.Runs; run++)
            {
                for (int i = 0; i < variants.Count; i++)
                {
                    var variant = variants[(i + run) % variants.Count];
                    var times = Enumerable.Range(0, options.Iterations).Select(_ => variant.Time()).ToList();
                    wall[variant].Add(Statistics.Median(times.Select(t => t.WallMs)));
                    cpu[variant].Add(Statistics.Median(times.Select(t => t.CpuMs)));
                    faults[variant].Add(Statistics.Median(times.Select(t => (double)t.PageFaults)));
                }
            }
            return new StepResult(benchCase, input,
                variants.Select(v => new VariantTimes(v.Label, wall[v], cpu[v], Statistics.Median(faults[v]))).ToList(), warmUpRounds);
        }
        finally
        {
            variants.ForEach(v => v.Dispose());
        }
    }

    public static List<string> Table(IEnumerable<StepResult> results)
    {
        var lines = new List<string>
        {
            "| network | batch | mode | variant | step (median of runs) | runs | CPU time | x BN (median of runs) | runs | page faults / step |",
            "|---|---:|---|---|---:|---|---:|---:|---|---:|",
        };
        foreach (var result in results)
        {
            foreach (var variant in result.Variants)
            {
                var ratios = result.Ratios(variant);
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"| {result.Case.Family} | {result.Case.Batch} | {result.Case.Mode} | {variant.Name} | {Statistics.Median(variant.WallMs):F1} ms | " +
                    $"{Statistics.Range(variant.WallMs, "F1")} | {Statistics.Median(variant.CpuMs):F1} ms | **x{Statistics.Median(ratios):F3}** | " +
                    $"{Statistics.Range(ratios, "F3")} | {variant.PageFaults:F0} |"));
            }
        }
        return lines;
    }

    /// <summary>One network with its optimizer, stepping on the case's images.</summary>
    private sealed class Variant : IDisposable
    {
        private readonly nn.Module<Tensor, Tensor> network;
        private readonly optim.Optimizer? optimizer;
        private readonly Tensor images, labels;
        private readonly bool training;

        public Variant(string label, string name, bool operatorsOnly, bool training, Tensor images, Tensor labels)
        {
            Label = label;
            this.images = images;
            this.labels = labels;
            this.training = training;
            manual_seed(1);
            network = Zoo.Create(name);
            foreach (var (_, module) in network.named_modules())
                if (module is ChannelEquilibrium ce)
                    ce.OperatorsOnly = operatorsOnly;
            if (training)
            {
                optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9);
                network.train();
            }
            else
            {
                // Running statistics first: evaluating CE before any training step is refused.
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                network.train();
                network.call(images);
                network.eval();
            }
        }

        public string Label { get; }

        public (double WallMs, double CpuMs, long PageFaults) Time()
        {
            long faults = PageFaults.Minor();
            var cpu = Environment.CpuUsage.TotalTime;
            long started = Stopwatch.GetTimestamp();
            Step();
            double wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            return (wall, (Environment.CpuUsage.TotalTime - cpu).TotalMilliseconds, PageFaults.Minor() - faults);
        }

        private void Step()
        {
            using var scope = NewDisposeScope();
            if (!training)
            {
                using var noGrad = no_grad();
                network.call(images);
                return;
            }
            optimizer!.zero_grad();
            nn.functional.cross_entropy(network.call(images), labels).backward();
            optimizer.step();
        }

        public void Dispose()
        {
            optimizer?.Dispose();
            network.Dispose();
        }
    }
}

internal static class Statistics
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    public static string Range(IReadOnlyCollection<double> values, string format) =>
        values.Min().ToString(format, CultureInfo.InvariantCulture) + "-" + values.Max().ToString(format, CultureInfo.InvariantCulture);
}
