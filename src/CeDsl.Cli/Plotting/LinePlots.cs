using System.Globalization;
using ScottPlot;

namespace CeDsl.Cli.Plotting;

/// <summary>One line of a <see cref="LinePlots"/> plot: points in x order; lines with the same label share a colour and one legend entry.</summary>
/// <param name="Label">The legend text.</param>
/// <param name="X">The x values.</param>
/// <param name="Y">The y values, as many as <paramref name="X"/>.</param>
internal sealed record LineSeries(string Label, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>
/// Line plots of experiment results (training curves, a measure against the weight decay), rendered
/// like <see cref="AnalysisPlots"/>. Several runs of one model (seeds) are drawn as several lines of
/// one colour, so their spread stays visible.
/// </summary>
internal static class LinePlots
{
    /// <summary>Draws <paramref name="series"/> into a PNG at <paramref name="path"/>.</summary>
    /// <param name="path">The PNG file, written atomically.</param>
    /// <param name="title">The title.</param>
    /// <param name="xLabel">The x axis label.</param>
    /// <param name="yLabel">The y axis label.</param>
    /// <param name="series">The lines.</param>
    /// <param name="logX">Place x on a logarithmic scale, with a tick at each x value that occurs (e.g. weight decays).</param>
    /// <param name="width">Pixels.</param>
    /// <param name="height">Pixels.</param>
    /// <exception cref="ArgumentException">No series, a series without points, with X and Y of different lengths, with a value that is not finite, with x &lt;= 0 on a log scale, or a size below 200 pixels.</exception>
    /// <exception cref="InvalidOperationException">No fonts are installed.</exception>
    public static void Save(string path, string title, string xLabel, string yLabel, IReadOnlyList<LineSeries> series,
        bool logX = false, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (series.Count == 0)
            throw new ArgumentException("At least one series is needed.", nameof(series));
        foreach (var line in series)
        {
            if (line.X.Count == 0 || line.X.Count != line.Y.Count)
                throw new ArgumentException($"The series '{line.Label}' has {line.X.Count} x values and {line.Y.Count} y values; it needs the same positive number of each.", nameof(series));
            if (line.X.Concat(line.Y).Any(v => !double.IsFinite(v)))
                throw new ArgumentException($"The series '{line.Label}' has a value that is not finite.", nameof(series));
            if (logX && line.X.Any(x => x <= 0))
                throw new ArgumentException($"The series '{line.Label}' has an x value <= 0, which a logarithmic axis cannot show.", nameof(series));
        }

        using var plot = AnalysisPlots.NewPlot();
        var palette = new ScottPlot.Palettes.Category10();
        var labels = series.Select(s => s.Label).Distinct(StringComparer.Ordinal).ToList();
        var legendDone = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in series)
        {
            var points = line.X.Zip(line.Y).OrderBy(p => p.First).ToArray();
            double[] xs = [.. points.Select(p => logX ? Math.Log10(p.First) : p.First)];
            double[] ys = [.. points.Select(p => p.Second)];
            var scatter = plot.Add.Scatter(xs, ys, palette.GetColor(labels.IndexOf(line.Label)));
            scatter.LineWidth = 2;
            scatter.MarkerSize = points.Length > 30 ? 0 : 6;
            if (legendDone.Add(line.Label))
                scatter.LegendText = line.Label;
        }

        if (logX)
        {
            var ticks = new ScottPlot.TickGenerators.NumericManual();
            foreach (double x in series.SelectMany(s => s.X).Distinct().Order())
                ticks.AddMajor(Math.Log10(x), x.ToString("G4", CultureInfo.InvariantCulture));
            plot.Axes.Bottom.TickGenerator = ticks;
            plot.Axes.AutoScale();
            var all = series.SelectMany(s => s.X).Select(Math.Log10).ToArray();
            double margin = Math.Max(0.1, (all.Max() - all.Min()) * 0.05);
            plot.Axes.SetLimitsX(all.Min() - margin, all.Max() + margin);
        }

        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(Edge.Right);
        AnalysisPlots.Save(plot, path, width, height);
    }
}
