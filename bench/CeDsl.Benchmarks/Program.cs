using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using CeDsl.Bench;
using CeDsl.Benchmarks;

// Usage: CeDsl.Benchmarks [--pytorch results.json] [--markdown out.md] [BenchmarkDotNet args]
// bench/run-ce-bench.sh runs the PyTorch reference first, then this, on the same machine.
string? pytorchResults = TakeOption(ref args, "--pytorch");
string? markdownPath = TakeOption(ref args, "--markdown");

// In-process: the benchmarks need the native libtorch the build placed (and patched) next to us.
var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
    .WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(7);
var config = ManualConfig.Create(DefaultConfig.Instance).AddJob(job);
Summary summary = BenchmarkRunner.Run<ChannelEquilibriumBenchmarks>(config, args);

var measured = summary.Reports
    .Where(r => r.ResultStatistics is not null)
    .Select(r => new Measurement(
        ((LayerShape)r.BenchmarkCase.Parameters["Shape"]).ToString(),
        r.BenchmarkCase.Parameters["Variant"].ToString()!,
        r.BenchmarkCase.Descriptor.WorkloadMethod.Name == nameof(ChannelEquilibriumBenchmarks.TrainForwardBackward) ? "train" : "eval",
        r.ResultStatistics!.Median / 1e6))
    .ToList();
var reference = pytorchResults is null ? [] : LoadPyTorch(pytorchResults);

string table = RatioTable.Render(measured, reference);
Console.WriteLine(table);
if (markdownPath is not null)
{
    File.WriteAllText(markdownPath, table);
    Console.WriteLine($"table written to {markdownPath}");
}

static string? TakeOption(ref string[] args, string name)
{
    int at = Array.IndexOf(args, name);
    if (at < 0) return null;
    if (at + 1 >= args.Length) throw new ArgumentException($"{name} needs a value");
    string value = args[at + 1];
    args = [.. args[..at], .. args[(at + 2)..]];
    return value;
}

static List<Measurement> LoadPyTorch(string path)
{
    using var document = JsonDocument.Parse(File.ReadAllText(path));
    return document.RootElement.GetProperty("results").EnumerateArray()
        .Select(e => new Measurement(
            $"C{e.GetProperty("c").GetInt32()}x{e.GetProperty("h").GetInt32()}",
            e.GetProperty("variant").GetString()!.Replace('+', '_'),
            e.GetProperty("mode").GetString()!,
            e.GetProperty("median_ms").GetDouble()))
        .ToList();
}

internal sealed record Measurement(string Shape, string Variant, string Mode, double MedianMs);

internal static class RatioTable
{
    public static string Render(IReadOnlyList<Measurement> torchSharp, IReadOnlyList<Measurement> pytorch)
    {
        var text = new StringBuilder();
        text.AppendLine("| shape | mode | block | TorchSharp ms | x BN | PyTorch ref ms | x BN (ref) | TorchSharp / ref | released ms | x BN (released) | TorchSharp / released |");
        text.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var m in torchSharp.OrderBy(m => m.Shape).ThenByDescending(m => m.Mode))
        {
            double bn = Find(torchSharp, m.Shape, m.Mode, "BN")?.MedianMs ?? double.NaN;
            double referenceBn = Find(pytorch, m.Shape, m.Mode, "BN")?.MedianMs ?? double.NaN;
            text.Append(CultureInfo.InvariantCulture,
                $"| {m.Shape} | {m.Mode} | {Label(m.Variant)} | {m.MedianMs:F1} | x{m.MedianMs / bn:F2} | ");
            // The authors' released module (ce_bench.py --released) stands beside both CE rows.
            var reference = Find(pytorch, m.Shape, m.Mode, m.Variant);
            var released = m.Variant.StartsWith("BN_CE", StringComparison.Ordinal) ? Find(pytorch, m.Shape, m.Mode, "BN_CE (released)") : null;
            text.Append(Cells(reference)).Append(' ');
            text.AppendLine(Cells(released));

            string Cells(Measurement? other) => other is null
                ? "- | - | - |"
                : string.Create(CultureInfo.InvariantCulture, $"{other.MedianMs:F1} | x{other.MedianMs / referenceBn:F2} | {m.MedianMs / other.MedianMs:F3} |");
        }
        return text.ToString();
    }

    private static string Label(string variant) => variant.Replace("_operators", " (operators)").Replace('_', '+');

    private static Measurement? Find(IReadOnlyList<Measurement> list, string shape, string mode, string variant) =>
        list.FirstOrDefault(m => m.Shape == shape && m.Mode == mode && m.Variant == variant);
}
