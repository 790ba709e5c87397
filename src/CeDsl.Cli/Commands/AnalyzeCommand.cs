using System.CommandLine;
using System.Globalization;
using CeDsl.Analysis;
using CeDsl.Cli.Plotting;
using CeDsl.Data;

using static CeDsl.Cli.Formatting;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl analyze</c>: per-layer inhibited-channel statistics (the paper's |gamma| &lt; 1e-3 and
/// sparsity of post-ReLU values &lt; 1e-3; the slides' gamma &lt; 0.1 and beta &lt;= 0) and the cumulative
/// random channel-ablation curve of a trained checkpoint on the test images, as CSV files and PNG plots.
/// </summary>
internal sealed class AnalyzeCommand
{
    public const string StatisticsCsv = "channels.csv";
    public const string StatisticsPng = "channels.png";
    public const string AblationCsv = "ablation.csv";

    /// <summary>The ECDM channel importance of every BN-ReLU-conv chain.</summary>
    public const string ImportanceCsv = "importance.csv";
    public const string AblationPng = "ablation.png";

    private readonly DataOptions _data = new(withTrain: false);
    private readonly Option<string?> _checkpoint = CliOptions.Path("--checkpoint",
        "A checkpoint written by cedsl train (not a folded one), or a plain state dict (PyTorch .pt/.pth, safetensors) with --network", "file", required: true);
    private readonly Option<string> _network = Models.NetworkOption();
    private readonly Option<string?> _out = CliOptions.Path("--out", $"Directory for {StatisticsCsv}, {StatisticsPng}, {AblationCsv}, {AblationPng}, {ImportanceCsv}", "dir", required: true);
    private readonly Option<double[]> _ratios = new("--ratios")
    {
        Description = "Ablation ratios, fractions of each ablated layer's channels zeroed, separated by spaces, commas or |",
        DefaultValueFactory = _ => [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        AllowMultipleArgumentsPerToken = true,
        CustomParser = ParseRatios,
    };
    private readonly Option<int> _repeats = CliOptions.Integer("--repeats", "Random channel orders per ratio (mean and s.d. are plotted)", 3, 1, "must be positive");
    private readonly Option<string> _layers = CliOptions.Choice("--ablate",
        "Which normalization layers to ablate: first (the first one of the stem and of every block, the paper's \"first normalization layers\") or all",
        "first", "first", "all");
    private readonly Option<int> _seed = CliOptions.Integer("--seed", "Seed of the random channel orders", 1, 0, "must not be negative");

    public static Command Create() => new AnalyzeCommand().Build();

    private Command Build()
    {
        var command = new Command("analyze", "Inhibited-channel statistics per layer and the cumulative random channel-ablation curve of a checkpoint (CSV and PNG).")
        {
            _checkpoint, _network, _out, _ratios, _repeats, _layers, _seed,
        };
        _data.AddTo(command);
        CommandAction.Set(command, Run);
        return command;
    }

    private int Run(ParseResult parse, CommandOutput output)
    {
        var text = output.Output;
        string checkpoint = parse.GetValue(_checkpoint)!, outDirectory = parse.GetValue(_out)!;
        if (File.Exists(outDirectory))
            throw new UserException($"--out: '{outDirectory}' is a file; give a directory (it is created if missing).");
        using var model = LoadedModel.Load(checkpoint, parse.GetValue(_network));
        if (model.IsFolded)
            throw new UserException($"--checkpoint: '{checkpoint}' is folded, so its BatchNorm layers are gone; analyze the checkpoint cedsl train wrote.");
        using var data = _data.Load(parse, text);
        text.WriteLine($"model: {model.Description} from {checkpoint}");

        var probes = ProbePoints.Discover(model.Network);
        using var loader = new BatchLoader(data.Test, new BatchOptions { BatchSize = 500, Normalization = model.Normalization, PadTo = model.PadTo });
        var statistics = ChannelStatistics.Measure(model.Network, probes, loader) with { Model = model.Entry.Name };

        var targets = parse.GetValue(_layers) == "all" ? probes : FirstOfEachModule(probes);
        var ablationOptions = new ChannelAblationOptions { Ratios = parse.GetValue(_ratios)!, Repeats = parse.GetValue(_repeats), Seed = (ulong)parse.GetValue(_seed) };
        text.WriteLine(Invariant($"ablating {targets.Count} of {probes.Count} normalization layers ({string.Join(", ", targets.Select(t => t.Normalization))}): {ablationOptions.Ratios.Count} ratios x {ablationOptions.Repeats} repeats on {data.Test.Count:N0} images"));
        var curve = ChannelAblation.Run(model.Network, targets, loader, ablationOptions) with { Model = model.Entry.Name };

        model.Network.eval();
        var importance = ChannelImportanceChains.Analyze(model.Network, Models.InputShape);

        Directory.CreateDirectory(outDirectory);
        var importanceText = System.Text.Encoding.UTF8.GetBytes(ChannelImportanceChains.ToCsv(model.Entry.Name, importance));
        CeDsl.IO.AtomicFile.Write(Path.Combine(outDirectory, ImportanceCsv), stream => stream.Write(importanceText));
        AnalysisCsv.WriteStatistics(Path.Combine(outDirectory, StatisticsCsv), [statistics]);
        AnalysisPlots.SaveInhibitedChannels(Path.Combine(outDirectory, StatisticsPng), statistics);
        AnalysisCsv.WriteAblation(Path.Combine(outDirectory, AblationCsv), [curve]);
        AnalysisPlots.SaveAblationCurves(Path.Combine(outDirectory, AblationPng), [curve]);

        WriteStatistics(text, statistics);
        text.WriteLine("ablation ratio  channels  accuracy (mean ± s.d.)");
        foreach (var point in curve.Points)
            text.WriteLine(Invariant($"{point.Ratio,14:F2}  {point.AblatedChannels,8}  {Percent(point.Mean),7} ± {Percent(point.StandardDeviation)}"));
        if (importance.Count > 0)
            text.WriteLine(Invariant($"channel importance (ECDM) over {importance.Count} BN-ReLU-conv chains: mean Gini {importance.Average(c => c.Report.Gini):F3}, mean normalized entropy {importance.Average(c => c.Report.NormalizedEntropy):F3} (0 and 1: every channel matters equally)"));
        text.WriteLine($"wrote {string.Join(", ", new[] { StatisticsCsv, StatisticsPng, AblationCsv, AblationPng, ImportanceCsv }.Select(f => Path.Combine(outDirectory, f)))}");
        return 0;
    }

    /// <summary>The paper's criteria over the layers followed by a rectifier, then the slides' ratios, each labelled with its source.</summary>
    private static void WriteStatistics(TextWriter text, ChannelStatisticsReport statistics)
    {
        var options = statistics.Options;
        var rectified = statistics.BeforeRectifier();
        text.WriteLine(Invariant($"normalization layers followed by a rectifier: {rectified.Layers.Count} of {statistics.Layers.Count} ({string.Join(", ", rectified.Layers.Select(l => l.Normalization))}), {rectified.Channels:N0} channels"));
        text.WriteLine(Invariant($"  the CE paper's criteria: |gamma| < {options.ZeroGammaThreshold} (Fig. 3d): {Percent(rectified.ZeroGammaRatio, 1)}; sparsity ratio, post-rectifier values < {options.ActivationThreshold} on {statistics.Images:N0} images (Fig. 1): {Percent(rectified.SparsityRatio, 1)}"));
        text.WriteLine(Invariant($"  the CE slides' ratios: gamma < {options.GammaThreshold} (Table 9): {Percent(rectified.GammaBelowRatio, 1)}, beta <= 0 (Table 4): {Percent(rectified.BetaNonPositiveRatio, 1)}, both (Remark 1 at gamma < {options.GammaThreshold}): {Percent(rectified.InhibitedRatio, 1)}"));
        text.WriteLine(Invariant($"all {statistics.Layers.Count} normalization layers ({statistics.Channels:N0} channels): |gamma| < {options.ZeroGammaThreshold}: {Percent(statistics.ZeroGammaRatio, 1)}, gamma < {options.GammaThreshold}: {Percent(statistics.GammaBelowRatio, 1)}, beta <= 0: {Percent(statistics.BetaNonPositiveRatio, 1)}, both: {Percent(statistics.InhibitedRatio, 1)}"));
    }

    private static double[] ParseRatios(System.CommandLine.Parsing.ArgumentResult result)
    {
        var ratios = new List<double>();
        foreach (string part in result.Tokens.SelectMany(t => t.Value.Split([',', '|', ' '], StringSplitOptions.RemoveEmptyEntries)))
        {
            if (!double.TryParse(part, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double ratio) || !(ratio >= 0 && ratio <= 1))
            {
                result.AddError($"--ratios must be numbers in [0, 1]; got '{part}'.");
                return [];
            }
            ratios.Add(ratio);
        }
        if (ratios.Count == 0)
            result.AddError("--ratios needs at least one ratio.");
        return [.. ratios];
    }

    /// <summary>
    /// Under each parent module, the first probe point followed by a rectifier: the stem's and every
    /// block's first normalization layer (not a shortcut's, which has no rectifier).
    /// </summary>
    internal static IReadOnlyList<ProbePoint> FirstOfEachModule(IReadOnlyList<ProbePoint> probes) =>
        [.. probes.Where(p => p.Rectifier != Rectifier.None).GroupBy(p => Parent(p.Normalization)).Select(g => g.First())];

    private static string Parent(string name) => name.Contains('.') ? name[..name.LastIndexOf('.')] : "";

}
