using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CeDsl.Folding;
using CeDsl.Networks;
using CeDsl.Onnx;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

// The ONNX benchmark (docs/benchmarks/onnx.md): folded ResNet-50 and folded CE-ResNet-50, evaluation forward on the CPU,
// in ONNX Runtime (the exported model, all graph optimizations) and in TorchSharp (the folded module), side by side.
// The four variants run in rotation, round after round (each round starts one variant later), so that a shared,
// busy machine slows them alike; the table gives per variant the median time per pass, the spread over rounds and
// the median of the per-round ratios to the folded baseline in the same runtime.
// --profile then runs each ONNX model once more with ONNX Runtime's profiler and sums the kernel time per operator type.
//   dotnet run -c Release --project bench/CeDsl.Onnx.Benchmarks -- [--batches 1,32] [--size 224] [--rounds 5] [--threads 2] [--profile] [--markdown FILE]
var options = Options.Parse(args);
torch.set_num_threads(options.Threads);
var invariant = CultureInfo.InvariantCulture;
string Load() => File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
var lines = new List<string>
{
    $"Folded networks, evaluation forward, {options.Size}x{options.Size}, float32, {options.Threads} threads ({Environment.ProcessorCount} CPUs), " +
    $"{options.Rounds} rounds after {options.WarmUp} warm-up passes per variant; load average at the start: {Load()}.",
    "",
};

var networks = new List<(string Name, nn.Module<Tensor, Tensor> Folded, byte[] Onnx)>();
foreach (var (name, label) in new[] { ("resnet50", "ResNet-50"), ("ce-resnet50", "CE-ResNet-50") })
{
    manual_seed(0);
    using var network = Zoo.Create(name);
    using (no_grad())
    {
        // Running statistics from one training-mode pass (their values do not change the cost).
        network.train();
        network.call(randn(4, 3, options.Size, options.Size));
    }
    network.eval();
    var folded = ((IFoldable)network).Fold();
    folded.eval();
    var architecture = OnnxExport.ArchitectureOf(folded, options.Size, options.Size);
    networks.Add((label, folded, OnnxExport.ToModel(architecture, folded.state_dict()).ToByteArray()));
}

using var sessionOptions = new SessionOptions
{
    GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    IntraOpNumThreads = options.Threads,
    InterOpNumThreads = 1,
};
var sessions = networks.ToDictionary(n => n.Name, n => new InferenceSession(n.Onnx, sessionOptions));
var variants = new List<(string Network, string Runtime, Func<Tensor, float[], long[], double> Run)>();
foreach (var (name, folded, _) in networks)
{
    variants.Add((name, "ONNX Runtime", (_, values, shape) => TimeOnnx(sessions[name], values, shape)));
    variants.Add((name, "TorchSharp", (tensor, _, _) => TimeTorch(folded, tensor)));
}

foreach (int batch in options.Batches)
{
    using var input = randn(batch, 3, options.Size, options.Size);
    float[] values = input.data<float>().ToArray();
    // A pass of batch 1 is short: several per measurement, so that one measurement is not a timer's tick.
    int passes = Math.Max(1, 8 / batch);
    foreach (var variant in variants)
        for (int i = 0; i < options.WarmUp; i++)
            variant.Run(input, values, input.shape);
    var times = variants.ToDictionary(v => (v.Network, v.Runtime), _ => new List<double>());
    for (int round = 0; round < options.Rounds; round++)
    {
        for (int k = 0; k < variants.Count; k++)
        {
            var variant = variants[(k + round) % variants.Count];
            double total = 0;
            for (int pass = 0; pass < passes; pass++)
                total += variant.Run(input, values, input.shape);
            times[(variant.Network, variant.Runtime)].Add(total / passes);
        }
    }

    lines.Add($"### Batch {batch} ({passes} passes per measurement; load average after: {Load()})");
    lines.Add("");
    lines.Add("| network | runtime | median time per pass | min - max over rounds | images/s | ratio to the folded ResNet-50 in the same runtime (median of rounds) | ONNX Runtime / TorchSharp |");
    lines.Add("|---|---|---:|---:|---:|---:|---:|");
    foreach (var (network, runtime, _) in variants)
    {
        var own = times[(network, runtime)];
        var baseline = times[("ResNet-50", runtime)];
        double ratio = Median(own.Select((t, i) => t / baseline[i]));
        double versus = Median(times[(network, "ONNX Runtime")].Select((t, i) => t / times[(network, "TorchSharp")][i]));
        lines.Add(string.Create(invariant,
            $"| {network} | {runtime} | {Median(own):F1} ms | {own.Min():F1} - {own.Max():F1} ms | {batch * 1000 / Median(own):F1} | {(network == "ResNet-50" ? "1 (baseline)" : ratio.ToString("F3", invariant))} | {(runtime == "ONNX Runtime" ? versus.ToString("F2", invariant) : "")} |"));
    }
    lines.Add("");
    foreach (var line in lines.Skip(lines.Count - variants.Count - 5)) Console.WriteLine(line);
}

if (options.Profile)
{
    int batch = options.Batches.Max();
    using var input = randn(batch, 3, options.Size, options.Size);
    float[] values = input.data<float>().ToArray();
    lines.Add($"### ONNX Runtime's profile, batch {batch}: kernel time per operator type (one pass after a warm-up)");
    lines.Add("");
    lines.Add("| operator | " + string.Join(" | ", networks.Select(n => n.Name)) + " |");
    lines.Add("|---|" + string.Concat(networks.Select(_ => "---:|")));
    var perNetwork = new Dictionary<string, Dictionary<string, double>>();
    foreach (var (name, _, onnx) in networks)
    {
        using var profiled = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = options.Threads,
            InterOpNumThreads = 1,
            EnableProfiling = true,
            ProfileOutputPathPrefix = Path.Combine(Path.GetTempPath(), "cedsl-onnx-profile"),
        };
        using var session = new InferenceSession(onnx, profiled);
        TimeOnnx(session, values, input.shape);
        TimeOnnx(session, values, input.shape);
        string file = session.EndProfiling();
        perNetwork[name] = KernelTimes(file, skip: 1);
        File.Delete(file);
    }
    var operators = perNetwork.Values.SelectMany(d => d.Keys).Distinct().OrderByDescending(op => perNetwork.Values.Max(d => d.GetValueOrDefault(op))).ToList();
    foreach (var op in operators)
        lines.Add($"| {op} | " + string.Join(" | ", networks.Select(n => perNetwork[n.Name].TryGetValue(op, out var ms) ? ms.ToString("F1", invariant) + " ms" : "")) + " |");
    lines.Add("| all | " + string.Join(" | ", networks.Select(n => perNetwork[n.Name].Values.Sum().ToString("F1", invariant) + " ms")) + " |");
    lines.Add("");
}

Console.WriteLine();
foreach (var line in lines) Console.WriteLine(line);
if (options.Markdown is { } path)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    File.WriteAllLines(path, lines);
}
foreach (var session in sessions.Values) session.Dispose();
foreach (var network in networks) network.Folded.Dispose();
return 0;

static double TimeOnnx(InferenceSession session, float[] values, long[] shape)
{
    using var input = OrtValue.CreateTensorValueFromMemory(values, shape);
    using var run = new RunOptions();
    var watch = Stopwatch.StartNew();
    using var outputs = session.Run(run, [session.InputNames[0]], [input], [session.OutputNames[0]]);
    return watch.Elapsed.TotalMilliseconds;
}

static double TimeTorch(nn.Module<Tensor, Tensor> network, Tensor input)
{
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    var watch = Stopwatch.StartNew();
    network.call(input);
    return watch.Elapsed.TotalMilliseconds;
}

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

// ONNX Runtime's profile: a JSON array of events; a node's kernel time is a "Node" event named "<node>_kernel_time"
// with its operator type in args.op_name and its duration in microseconds. The first `skip` runs are left out.
static Dictionary<string, double> KernelTimes(string file, int skip)
{
    using var document = JsonDocument.Parse(File.ReadAllText(file));
    var runs = document.RootElement.EnumerateArray()
        .Where(e => e.GetProperty("cat").GetString() == "Session" && e.GetProperty("name").GetString() == "model_run")
        .Select(e => e.GetProperty("ts").GetInt64()).Order().ToList();
    long from = runs.Count > skip ? runs[skip] : 0;
    var times = new Dictionary<string, double>();
    foreach (var e in document.RootElement.EnumerateArray())
    {
        if (e.GetProperty("cat").GetString() != "Node" || !e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal) || e.GetProperty("ts").GetInt64() < from)
            continue;
        string op = e.GetProperty("args").GetProperty("op_name").GetString()!;
        times[op] = times.GetValueOrDefault(op) + e.GetProperty("dur").GetInt64() / 1000.0;
    }
    return times;
}

internal sealed record Options(int[] Batches, int Size, int Rounds, int WarmUp, int Threads, bool Profile, string? Markdown)
{
    public static Options Parse(string[] args)
    {
        var options = new Options([1, 32], 224, 5, 2, 2, false, null);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--batches" => options with { Batches = Value().Split(',').Select(int.Parse).ToArray() },
                "--size" => options with { Size = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--rounds" => options with { Rounds = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--warmup" => options with { WarmUp = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--threads" => options with { Threads = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--profile" => options with { Profile = true },
                "--markdown" => options with { Markdown = Value() },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        return options;
    }
}
