using System.Globalization;
using System.Text;
using CeDsl.IO;

namespace CeDsl.Analysis;

/// <summary>
/// CSV files of the channel analysis: invariant culture, one header line, '\n' line ends, doubles in
/// their shortest round-trip form, written atomically (readers see the old or the whole new file).
/// Lists inside a field (ablation targets, per-repeat accuracies) are separated by ';'.
/// </summary>
public static class AnalysisCsv
{
    /// <summary>The header of a channel statistics file.</summary>
    public const string StatisticsHeader =
        "model,layer,equilibrium,activation,rectifier,channels,gamma_threshold,gamma_below,abs_gamma_below,beta_nonpositive,inhibited," +
        "gamma_below_ratio,abs_gamma_below_ratio,beta_nonpositive_ratio,inhibited_ratio," +
        "activation_threshold,images,activation_values,sparse_values,sparsity_ratio,dead_channels,dead_channel_ratio," +
        "zero_gamma_threshold,zero_gamma,zero_gamma_ratio";

    /// <summary>The header of an ablation file.</summary>
    public const string AblationHeader =
        "model,site,seed,targets,total_channels,images,ratio,ablated_channels,repeats,mean_accuracy,std_accuracy,accuracies";

    /// <summary>The <c>layer</c> of the row with a model's statistics over all its probed layers.</summary>
    public const string OverallLayer = "(overall)";

    /// <summary>
    /// The <c>layer</c> of the row with a model's statistics over the layers followed by a rectifier
    /// (<see cref="ChannelStatisticsReport.BeforeRectifier"/>), the row that reports the paper's criteria.
    /// </summary>
    public const string BeforeRectifierLayer = "(before rectifier)";

    /// <summary>
    /// Writes one row per layer of each report, then a <see cref="OverallLayer"/> row and, if any layer
    /// has a rectifier, a <see cref="BeforeRectifierLayer"/> row per report: pooled counts and ratios,
    /// the summed activation counts of the measured layers, and as sparsity_ratio the paper's mean of
    /// the per-layer ratios.
    /// </summary>
    /// <exception cref="ArgumentException">A model or module name contains ',', ';', '"' or a line break.</exception>
    public static void WriteStatistics(string path, IReadOnlyList<ChannelStatisticsReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var text = new StringBuilder(StatisticsHeader).Append('\n');
        foreach (var report in reports)
        {
            string model = Field(report.Model, "model name");
            string gammaThreshold = Number(report.Options.GammaThreshold);
            string activationThreshold = Number(report.Options.ActivationThreshold);
            string zeroGammaThreshold = Number(report.Options.ZeroGammaThreshold);
            foreach (var l in report.Layers)
                Row(text, model, Field(l.Normalization, "layer"), Field(l.Equilibrium, "module name"), Field(l.Activation, "module name"),
                    l.Rectifier.ToString(), Integer(l.Channels), gammaThreshold,
                    Integer(l.GammaBelow), Integer(l.AbsGammaBelow), Integer(l.BetaNonPositive), Integer(l.Inhibited),
                    Number(l.GammaBelowRatio), Number(l.AbsGammaBelowRatio), Number(l.BetaNonPositiveRatio), Number(l.InhibitedRatio),
                    activationThreshold, Integer(report.Images), Integer(l.ActivationValues), Integer(l.SparseValues),
                    Number(l.SparsityRatio), Integer(l.DeadChannels), Number(l.DeadChannelRatio),
                    zeroGammaThreshold, Integer(l.ZeroGamma), Number(l.ZeroGammaRatio));

            SummaryRow(text, model, OverallLayer, report);
            var beforeRectifier = report.BeforeRectifier();
            if (beforeRectifier.Layers.Count > 0)
                SummaryRow(text, model, BeforeRectifierLayer, beforeRectifier);
        }
        Write(path, text);
    }

    private static void SummaryRow(StringBuilder text, string model, string layer, ChannelStatisticsReport report)
    {
        var measured = report.Layers.Where(l => l.SparsityRatio is not null).ToList();
        bool any = measured.Count > 0;
        Row(text, model, layer, "", "", "", Integer(report.Channels), Number(report.Options.GammaThreshold),
            Integer(report.Layers.Sum(l => l.GammaBelow)), Integer(report.Layers.Sum(l => l.AbsGammaBelow)),
            Integer(report.Layers.Sum(l => l.BetaNonPositive)), Integer(report.Layers.Sum(l => l.Inhibited)),
            Number(report.GammaBelowRatio), Number(report.AbsGammaBelowRatio), Number(report.BetaNonPositiveRatio), Number(report.InhibitedRatio),
            Number(report.Options.ActivationThreshold), Integer(report.Images),
            any ? Integer(measured.Sum(l => l.ActivationValues!.Value)) : "", any ? Integer(measured.Sum(l => l.SparseValues!.Value)) : "",
            Number(report.SparsityRatio), any ? Integer(measured.Sum(l => l.DeadChannels!.Value)) : "", Number(report.DeadChannelRatio),
            Number(report.Options.ZeroGammaThreshold), Integer(report.Layers.Sum(l => l.ZeroGamma)), Number(report.ZeroGammaRatio));
    }

    /// <summary>Reads the reports of a statistics file, one per model in file order (the summary rows are recomputed, not read).</summary>
    /// <exception cref="InvalidDataException">Another header, a malformed row, or a model whose rows disagree on thresholds or images.</exception>
    public static IReadOnlyList<ChannelStatisticsReport> ReadStatistics(string path)
    {
        var reports = new List<ChannelStatisticsReport>();
        foreach (var (model, rows) in Rows(path, StatisticsHeader))
        {
            var layers = new List<LayerChannelStatistics>();
            ChannelStatisticsOptions? options = null;
            long images = 0;
            foreach (var (line, f) in rows)
            {
                var row = Parse(path, line, () => ReadStatisticsRow(f));
                if (options is not null && (options != row.Options || images != row.Images))
                    throw new InvalidDataException($"'{path}', line {line}: model '{model}' has rows with other thresholds or image counts.");
                (options, images) = (row.Options, row.Images);
                if (row.Layer is not null)
                    layers.Add(row.Layer);
            }
            reports.Add(new ChannelStatisticsReport(model, options!, images, layers));
        }
        return reports;
    }

    private static (ChannelStatisticsOptions Options, long Images, LayerChannelStatistics? Layer) ReadStatisticsRow(string[] f)
    {
        var options = new ChannelStatisticsOptions { GammaThreshold = Double(f[6]), ActivationThreshold = Double(f[15]), ZeroGammaThreshold = Double(f[22]) };
        long images = Long(f[16]);
        if (f[1] is OverallLayer or BeforeRectifierLayer)
            return (options, images, null);
        if (!Enum.TryParse<Rectifier>(f[4], out var rectifier) || !Enum.IsDefined(rectifier))
            throw new FormatException($"unknown rectifier '{f[4]}'");
        return (options, images, new LayerChannelStatistics(f[1], Optional(f[2]), Optional(f[3]), rectifier, Int(f[5]),
            Int(f[7]), Int(f[8]), Int(f[9]), Int(f[10]),
            f[17].Length == 0 ? null : Long(f[17]), f[18].Length == 0 ? null : Long(f[18]), f[20].Length == 0 ? null : Int(f[20]), Int(f[23])));
    }

    /// <summary>Writes one row per point of each curve.</summary>
    /// <exception cref="ArgumentException">A model or target name contains ',', ';', '"' or a line break.</exception>
    public static void WriteAblation(string path, IReadOnlyList<AblationCurve> curves)
    {
        ArgumentNullException.ThrowIfNull(curves);
        var text = new StringBuilder(AblationHeader).Append('\n');
        foreach (var curve in curves)
        {
            string targets = string.Join(';', curve.Targets.Select(t => Field(t, "target")));
            foreach (var p in curve.Points)
                Row(text, Field(curve.Model, "model name"), curve.Site.ToString(), curve.Seed.ToString(CultureInfo.InvariantCulture), targets,
                    Integer(curve.TotalChannels), Integer(curve.Images), Number(p.Ratio), Integer(p.AblatedChannels), Integer(p.Accuracies.Count),
                    Number(p.Mean), Number(p.StandardDeviation), string.Join(';', p.Accuracies.Select(a => Number(a))));
        }
        Write(path, text);
    }

    /// <summary>Reads the curves of an ablation file, one per model in file order.</summary>
    /// <exception cref="InvalidDataException">Another header, a malformed row, or a model whose rows disagree on the curve's settings.</exception>
    public static IReadOnlyList<AblationCurve> ReadAblation(string path)
    {
        var curves = new List<AblationCurve>();
        foreach (var (model, rows) in Rows(path, AblationHeader))
        {
            var first = rows[0];
            var points = new List<AblationPoint>();
            foreach (var (line, f) in rows)
            {
                if (!f.AsSpan(0, 6).SequenceEqual(first.Fields.AsSpan(0, 6)))
                    throw new InvalidDataException($"'{path}', line {line}: model '{model}' has rows with another site, seed, targets or image count.");
                points.Add(Parse(path, line, () =>
                {
                    var accuracies = f[11].Split(';').Select(Double).ToArray();
                    if (accuracies.Length != Int(f[8]))
                        throw new FormatException($"{accuracies.Length} accuracies for {f[8]} repeats");
                    return new AblationPoint(Double(f[6]), Int(f[7]), accuracies);
                }));
            }
            curves.Add(Parse(path, first.Line, () =>
            {
                var g = first.Fields;
                if (!Enum.TryParse<AblationSite>(g[1], out var site) || !Enum.IsDefined(site))
                    throw new FormatException($"unknown ablation site '{g[1]}'");
                return new AblationCurve(model, g[3].Split(';'), Int(g[4]), site,
                    ulong.Parse(g[2], NumberStyles.None, CultureInfo.InvariantCulture), Int(g[5]), points);
            }));
        }
        return curves;
    }

    /// <summary>The rows of a file grouped by their first field (the model), in file order.</summary>
    private static List<(string Model, List<(int Line, string[] Fields)> Rows)> Rows(string path, string header)
    {
        string[] lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0] != header)
            throw new InvalidDataException($"'{path}' does not start with the header '{header}'.");
        int columns = header.Split(',').Length;
        var groups = new List<(string Model, List<(int Line, string[] Fields)> Rows)>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
                continue;
            string[] fields = lines[i].Split(',');
            if (fields.Length != columns)
                throw new InvalidDataException($"'{path}', line {i + 1}: {fields.Length} fields, expected {columns}: '{lines[i]}'.");
            if (groups.Count == 0 || groups[^1].Model != fields[0])
            {
                if (groups.Any(g => g.Model == fields[0]))
                    throw new InvalidDataException($"'{path}', line {i + 1}: the rows of model '{fields[0]}' are not contiguous.");
                groups.Add((fields[0], []));
            }
            groups[^1].Rows.Add((i + 1, fields));
        }
        return groups;
    }

    private static T Parse<T>(string path, int line, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new InvalidDataException($"'{path}', line {line}: {e.Message}", e);
        }
    }

    private static void Row(StringBuilder text, params string[] fields) => text.AppendJoin(',', fields).Append('\n');

    private static void Write(string path, StringBuilder text) =>
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text.ToString())));

    private static string Field(string? value, string what)
    {
        if (value is null)
            return "";
        if (value.AsSpan().IndexOfAny(",;\"\r\n") >= 0)
            throw new ArgumentException($"The {what} '{value}' contains ',', ';', '\"' or a line break, which this CSV format does not allow.");
        return value;
    }

    private static string? Optional(string field) => field.Length == 0 ? null : field;

    private static string Integer(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "";

    private static string Number(double? value) => value?.ToString("R", CultureInfo.InvariantCulture) ?? "";

    private static double Double(string field) => double.Parse(field, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static int Int(string field) => int.Parse(field, NumberStyles.Integer, CultureInfo.InvariantCulture);

    private static long Long(string field) => long.Parse(field, NumberStyles.Integer, CultureInfo.InvariantCulture);
}
