using System.Globalization;
using CeDsl.Analysis;
using CeDsl.IO;
using ScottPlot;
using SkiaSharp;

namespace CeDsl.Cli.Plotting;

/// <summary>
/// PNG plots of the channel analysis, rendered headless by ScottPlot 5 (SkiaSharp). SkiaSharp's
/// Linux build without fontconfig reads the fonts under /usr/share/fonts; with none there, every
/// label would silently be missing, so that is an error instead.
/// </summary>
internal static class AnalysisPlots
{
    private const string PreferredFont = "DejaVu Sans";

    /// <summary>
    /// Accuracy against ablation ratio, one line per curve (e.g. BN and CE) with the mean of the
    /// repeats and error bars of one sample standard deviation.
    /// </summary>
    /// <exception cref="ArgumentException">No curves, a curve without points, or a size below 200 pixels.</exception>
    /// <exception cref="InvalidOperationException">No fonts are installed.</exception>
    public static void SaveAblationCurves(string path, IReadOnlyList<AblationCurve> curves, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(curves);
        if (curves.Count == 0)
            throw new ArgumentException("At least one ablation curve is needed.", nameof(curves));
        if (curves.FirstOrDefault(c => c.Points.Count == 0) is { } empty)
            throw new ArgumentException($"The ablation curve of '{empty.Model}' has no points.", nameof(curves));

        using var plot = NewPlot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < curves.Count; i++)
        {
            var curve = curves[i];
            var color = palette.GetColor(i);
            double[] ratios = [.. curve.Points.Select(p => p.Ratio)];
            double[] means = [.. curve.Points.Select(p => 100 * p.Mean)];
            double[] deviations = [.. curve.Points.Select(p => 100 * p.StandardDeviation)];
            var errors = plot.Add.ErrorBar(ratios, means, deviations);
            errors.Color = color;
            errors.LineWidth = 1.5f;
            errors.CapSize = 6;
            var line = plot.Add.Scatter(ratios, means, color);
            line.LineWidth = 2;
            line.MarkerSize = 7;
            line.LegendText = curve.Model;
        }

        int repeats = curves.Max(c => c.Points.Max(p => p.Accuracies.Count));
        plot.Title("Cumulative random channel ablation");
        plot.XLabel(curves.All(c => c.Site == AblationSite.NormalizationOutput)
            ? "Fraction of channels zeroed at the normalization outputs"
            : "Fraction of channels zeroed");
        plot.YLabel(repeats > 1 ? $"Top-1 accuracy (%), mean ± s.d. of {repeats} draws" : "Top-1 accuracy (%)");
        double maxRatio = curves.Max(c => c.Points.Max(p => p.Ratio));
        plot.Axes.SetLimits(-0.02, Math.Max(maxRatio, 0.1) + 0.02, 0, 102);
        plot.ShowLegend(Alignment.UpperRight);
        Save(plot, path, width, height);
    }

    /// <summary>
    /// Per layer, grouped bars of the fraction of channels with |gamma| below the zero threshold, (where
    /// measured) the sparsity ratio of the post-rectifier values, and the fractions with gamma below the
    /// slides' threshold and with beta &lt;= 0.
    /// </summary>
    /// <exception cref="ArgumentException">A report without layers, or a size below 200 pixels.</exception>
    /// <exception cref="InvalidOperationException">No fonts are installed.</exception>
    public static void SaveInhibitedChannels(string path, ChannelStatisticsReport report, int width = 900, int height = 520)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Layers.Count == 0)
            throw new ArgumentException($"The statistics of '{report.Model}' have no layers.", nameof(report));

        using var plot = NewPlot();
        var palette = new ScottPlot.Palettes.Category10();
        string zero = report.Options.ZeroGammaThreshold.ToString("G", CultureInfo.InvariantCulture);
        string threshold = report.Options.GammaThreshold.ToString("G", CultureInfo.InvariantCulture);
        string activation = report.Options.ActivationThreshold.ToString("G", CultureInfo.InvariantCulture);
        var series = new List<(string Label, Func<LayerChannelStatistics, double?> Value)>
        {
            ($"|γ| < {zero} (paper, Fig. 3d)", l => l.ZeroGammaRatio),
        };
        if (report.Layers.Any(l => l.SparsityRatio is not null))
            series.Add(($"sparsity: rectified values < {activation} (paper, Fig. 1)", l => l.SparsityRatio));
        series.Add(($"γ < {threshold} (slides, Table 9)", l => l.GammaBelowRatio));
        series.Add(("β ≤ 0 (slides, Table 4)", l => l.BetaNonPositiveRatio));

        const double groupWidth = 0.8;
        double barWidth = groupWidth / series.Count;
        for (int s = 0; s < series.Count; s++)
        {
            var color = palette.GetColor(s);
            var bars = report.Layers
                .Select((layer, index) => (Value: series[s].Value(layer), Index: index))
                .Where(bar => bar.Value is not null)
                .Select(bar => new Bar
                {
                    Position = bar.Index - groupWidth / 2 + (s + 0.5) * barWidth,
                    Value = bar.Value!.Value,
                    Size = barWidth * 0.95,
                    FillColor = color,
                    LineWidth = 0,
                })
                .ToArray();
            var plottable = plot.Add.Bars(bars);
            plottable.LegendText = series[s].Label;
        }

        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < report.Layers.Count; i++)
            ticks.AddMajor(i, report.Layers[i].Normalization);
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.TickLabelStyle.Rotation = -40;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.UpperRight;
        // ScottPlot does not size the axis for rotated labels: about 7 px per character, at 40 degrees.
        float longest = report.Layers.Max(l => l.Normalization.Length);
        plot.Axes.Bottom.MinimumSize = Math.Min(260, 40 + 4.6f * longest);

        plot.Title($"Inhibited channels per layer: {report.Model}");
        plot.XLabel("Normalization layer");
        plot.YLabel("Ratio");
        plot.Axes.SetLimits(-0.6, report.Layers.Count - 0.4, 0, 1.02);
        plot.ShowLegend(Edge.Top);
        Save(plot, path, width, height);
    }

    /// <summary>A plot with the preferred font; refuses to draw without fonts.</summary>
    internal static Plot NewPlot()
    {
        if (SKFontManager.Default.FontFamilyCount == 0)
            throw new InvalidOperationException(
                "No fonts are installed, so the plot's labels cannot be drawn: install one under /usr/share/fonts (e.g. the Debian package fonts-dejavu-core).");
        var plot = new Plot();
        if (SKFontManager.Default.FontFamilies.Contains(PreferredFont))
            plot.Font.Set(PreferredFont);
        return plot;
    }

    /// <summary>Renders <paramref name="plot"/> as a PNG, written atomically.</summary>
    internal static void Save(Plot plot, string path, int width, int height)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (width < 200 || height < 200)
            throw new ArgumentException($"A plot needs at least 200 x 200 pixels, got {width} x {height}.");
        byte[] png = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(png));
    }
}
