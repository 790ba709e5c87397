using CeDsl.Bench;
using System.Diagnostics;
using System.Globalization;
using CeDsl.Folding;
using CeDsl.Networks;
using TorchSharp;
using static TorchSharp.torch;

// The folding benchmark (docs/benchmarks/folding.md): whole-network evaluation forward on the CPU,
// baseline / SE / CE, unfolded and folded, each as a ratio to the folded baseline of the same
// family measured in the same run.
// The variants are timed in rotation, round after round, so that a shared, busy machine slows them
// alike; the table gives median times and the median of the per-round ratios.
// --breakdown also times every FoldedChannelEquilibrium of the folded CE network on the input it
// received, beside one read of that input (a reduction over H*W: the least the instance variance
// can cost), to show where folded CE's remaining time goes.
//   dotnet run -c Release --project bench/CeDsl.Network.Benchmarks -- [--batch 32] [--size 224] [--rounds 3] [--threads 2] [--breakdown] [--markdown FILE]
var options = Options.Parse(args);
const int MaxWarmUpRounds = 12;
torch.set_num_threads(options.Threads);
var invariant = CultureInfo.InvariantCulture;
var lines = new List<string>
{
    $"Evaluation forward, batch {options.Batch} at {options.Size}x{options.Size}, float32, {options.Threads} threads, " +
    $"{options.Rounds} rounds after warm-up rounds that end when no variant takes fresh pages (at most {MaxWarmUpRounds}); " +
    "median time, median of the per-round ratios to the folded baseline, median minor page faults per pass.",
    "",
    "| network | variant | median time | ratio to folded baseline | page faults per pass |",
    "|---|---|---:|---:|---:|",
};
foreach (var line in lines) Console.WriteLine(line);
var breakdowns = new List<string>();
var notes = new List<string>();

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
    var faults = variants.ToDictionary(v => v.Name, _ => new List<double>());
    // Warm-up rounds until no variant takes fresh pages any more (at most MaxWarmUpRounds): glibc's
    // heap grows for several passes before the activations of a network fit in memory it already
    // holds, and each first-touched page costs microseconds here (docs/benchmarks/folding.md).
    int warmUpRounds = 0;
    for (bool settled = false; !settled && warmUpRounds < MaxWarmUpRounds; warmUpRounds++)
        settled = variants.All(variant => Time(variant.Module, input).PageFaults < PageFaults.Settled);
    for (int round = 0; round < options.Rounds; round++)
    {
        var measured = new Dictionary<string, (double Milliseconds, long PageFaults)>();
        for (int i = 0; i < variants.Count; i++)
        {
            var (name, module) = variants[(i + round) % variants.Count];
            measured[name] = Time(module, input);
        }
        foreach (var (name, _) in variants)
        {
            times[name].Add(measured[name].Milliseconds);
            ratios[name].Add(measured[name].Milliseconds / measured["baseline, folded"].Milliseconds);
            faults[name].Add(measured[name].PageFaults);
        }
    }
    var warmUp = string.Create(invariant, $"{family}: {warmUpRounds} warm-up rounds.");
    Console.WriteLine(warmUp);
    notes.Add(warmUp);
    foreach (var (name, _) in variants)
    {
        var line = string.Create(invariant, $"| {family} | {name} | {Median(times[name]) / 1000:F2} s | {Median(ratios[name]):F3} | {Median(faults[name]):F0} |");
        Console.WriteLine(line);
        lines.Add(line);
    }
    if (options.Breakdown)
        breakdowns.AddRange(Breakdown(family, variants.Single(v => v.Name == "CE, folded").Module, input, Median(times["baseline, folded"]), options.Rounds));
    foreach (var (_, module) in variants)
        module.Dispose();
}
foreach (var line in breakdowns) Console.WriteLine(line);
lines.AddRange(breakdowns);
lines.Add("");
lines.AddRange(notes);
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

static (double Milliseconds, long PageFaults) Time(nn.Module<Tensor, Tensor> module, Tensor input)
{
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    long faults = PageFaults.Minor();
    var clock = Stopwatch.StartNew();
    module.call(input);
    return (clock.Elapsed.TotalMilliseconds, PageFaults.Minor() - faults);
}

// Each FoldedChannelEquilibrium of the folded CE network, timed alone on the input it received in one
// forward pass (median of the rounds), beside one reduction over H*W of that input and the
// multiply-accumulates of its per-sample d x d map; totals as a share of the folded baseline.
static List<string> Breakdown(string family, nn.Module<Tensor, Tensor> folded, Tensor input, double baselineMs, int rounds)
{
    var captured = new List<(string Path, FoldedChannelEquilibrium Module, Tensor Input)>();
    var removers = new List<Action>();
    foreach (var (path, module) in folded.named_modules())
    {
        if (module is not FoldedChannelEquilibrium ce) continue;
        // Before the call: inside its chain the CE writes its output over its input.
        var remover = ce.register_forward_pre_hook((_, x) => { captured.Add((path, ce, x.detach().clone().DetachFromDisposeScope())); return x; });
        removers.Add(() => remover.remove());
    }
    using (NewDisposeScope())
    using (no_grad())
        folded.call(input);
    removers.ForEach(remove => remove());

    var invariant = CultureInfo.InvariantCulture;
    var lines = new List<string>
    {
        "",
        $"{family}: every folded CE alone on its input, median of {rounds}; 'one read' = a sum over H*W of the same input.",
        "",
        "| CE | input | d | time | one read | map MACs |",
        "|---|---|---:|---:|---:|---:|",
    };
    double total = 0, reads = 0, macs = 0;
    foreach (var (path, module, x) in captured)
    {
        double time = Median(Enumerable.Range(0, rounds).Select(_ =>
        {
            using var copy = x.clone(); // a CE in its chain overwrites its input
            return Time(module, copy).Milliseconds;
        }).ToList());
        double read = Median(Enumerable.Range(0, rounds).Select(_ => TimeRead(x)).ToList());
        double mapMacs = x.numel() * (double)module.GroupSize;
        total += time;
        reads += read;
        macs += mapMacs;
        lines.Add(string.Create(invariant, $"| {path} | {string.Join("x", x.shape)} | {module.GroupSize} | {time:F1} ms | {read:F1} ms | {mapMacs / 1e9:F2} G |"));
        x.Dispose();
    }
    lines.Add(string.Create(invariant,
        $"| all {captured.Count} | | | {total:F0} ms ({total / baselineMs:P1} of the folded baseline) | {reads:F0} ms ({reads / baselineMs:P1}) | {macs / 1e9:F2} G |"));
    return lines;
}

static double TimeRead(Tensor input)
{
    using var scope = NewDisposeScope();
    var clock = Stopwatch.StartNew();
    input.sum([2, 3]);
    return clock.Elapsed.TotalMilliseconds;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

internal sealed record Options(int Batch, int Size, int Rounds, int Threads, string[] Families, string? Markdown, bool Breakdown)
{
    public static Options Parse(string[] args)
    {
        var options = new Options(32, 224, 3, 2, ["resnet18", "resnet50"], null, false);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (args[i] == "--breakdown")
            {
                options = options with { Breakdown = true };
                i--;
                continue;
            }
            if (i + 1 >= args.Length)
                throw new ArgumentException($"Option {args[i]} needs a value.");
            options = args[i] switch
            {
                "--batch" => options with { Batch = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--size" => options with { Size = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--rounds" => options with { Rounds = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--threads" => options with { Threads = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--families" => options with { Families = args[i + 1].Split(',') },
                "--markdown" => options with { Markdown = args[i + 1] },
                _ => throw new ArgumentException($"Unknown option {args[i]}; expected --batch, --size, --rounds, --threads, --families, --breakdown, --markdown."),
            };
        }
        return options;
    }
}
