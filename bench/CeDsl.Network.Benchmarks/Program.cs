using System.Diagnostics;
using System.Globalization;
using CeDsl.Folding;
using CeDsl.Networks;
using TorchSharp;
using static TorchSharp.torch;

// Issue 5's benchmark: whole-network evaluation forward on the CPU, baseline / SE / CE, unfolded
// and folded, each as a ratio to the folded baseline of the same family measured in the same run.
// The variants are timed in rotation, round after round, so that a shared, busy machine slows them
// alike; the table gives median times and the median of the per-round ratios.
//   dotnet run -c Release --project bench/CeDsl.Network.Benchmarks -- [--batch 32] [--size 224] [--rounds 3] [--threads 2] [--markdown FILE]
var options = Options.Parse(args);
torch.set_num_threads(options.Threads);
var invariant = CultureInfo.InvariantCulture;
var lines = new List<string>
{
    $"Evaluation forward, batch {options.Batch} at {options.Size}x{options.Size}, float32, {options.Threads} threads, " +
    $"{options.Rounds} rounds after one warm-up round; median time and median of the per-round ratios to the folded baseline.",
    "",
    "| network | variant | median time | ratio to folded baseline |",
    "|---|---|---|---|",
};
foreach (var line in lines) Console.WriteLine(line);

foreach (var family in options.Families)
{
    var variants = new List<(string Name, nn.Module<Tensor, Tensor> Module)>();
    foreach (var (zooName, label) in new[] { (family, "baseline"), ("se-" + family, "SE"), ("ce-" + family, "CE") })
    {
        manual_seed(0);
        var network = Zoo.Create(zooName);
        EstimateStatistics(network);
        var folded = ((IFoldable)network).Fold();
        variants.Add((label + ", folded", folded));
        variants.Add((label + ", unfolded", network));
    }
    // The folded baseline first: the reference of the ratios.
    using var input = randn(options.Batch, 3, options.Size, options.Size);
    var times = variants.ToDictionary(v => v.Name, _ => new List<double>());
    var ratios = variants.ToDictionary(v => v.Name, _ => new List<double>());
    for (int round = -1; round < options.Rounds; round++)
    {
        var measured = new Dictionary<string, double>();
        for (int i = 0; i < variants.Count; i++)
        {
            var (name, module) = variants[(i + Math.Max(round, 0)) % variants.Count];
            measured[name] = Time(module, input);
        }
        if (round < 0) continue;
        foreach (var (name, _) in variants)
        {
            times[name].Add(measured[name]);
            ratios[name].Add(measured[name] / measured["baseline, folded"]);
        }
    }
    foreach (var (name, module) in variants)
    {
        var line = string.Create(invariant, $"| {family} | {name} | {Median(times[name]) / 1000:F2} s | {Median(ratios[name]):F3} |");
        Console.WriteLine(line);
        lines.Add(line);
        module.Dispose();
    }
}
if (options.Markdown is { } path)
    File.WriteAllLines(path, lines);

// One training-mode pass at a small input, so that every running statistic is estimated (folding refuses
// never-estimated statistics); the timing does not depend on the values.
static void EstimateStatistics(nn.Module<Tensor, Tensor> network)
{
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    network.train();
    network.call(randn(4, 3, 64, 64));
    network.eval();
}

static double Time(nn.Module<Tensor, Tensor> module, Tensor input)
{
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    var clock = Stopwatch.StartNew();
    module.call(input);
    return clock.Elapsed.TotalMilliseconds;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

internal sealed record Options(int Batch, int Size, int Rounds, int Threads, string[] Families, string? Markdown)
{
    public static Options Parse(string[] args)
    {
        var options = new Options(32, 224, 3, 2, ["resnet18", "resnet50"], null);
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            options = args[i] switch
            {
                "--batch" => options with { Batch = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--size" => options with { Size = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--rounds" => options with { Rounds = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--threads" => options with { Threads = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--families" => options with { Families = args[i + 1].Split(',') },
                "--markdown" => options with { Markdown = args[i + 1] },
                _ => throw new ArgumentException($"Unknown option {args[i]}; expected --batch, --size, --rounds, --threads, --families, --markdown."),
            };
        }
        return options;
    }
}
