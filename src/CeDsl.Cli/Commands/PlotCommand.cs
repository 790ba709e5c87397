using System.CommandLine;
using System.Globalization;
using CeDsl.Analysis;
using CeDsl.Cli.Plotting;
using CeDsl.Training;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl plot</c>: PNG plots of finished runs and analyses, from the files <c>train</c> and
/// <c>analyze</c> write: training curves of several runs, the ablation curves of several analyses in
/// one plot, and lines from any CSV table (a measure against the weight decay).
/// </summary>
internal static class PlotCommand
{
    private static readonly Dictionary<string, (string Label, Func<EpochMetrics, double?> Value)> TrainingMeasures = new()
    {
        ["test-error"] = ("Test error (%)", m => 100 * (1 - m.TestAccuracy)),
        ["train-error"] = ("Training error (%)", m => 100 * (1 - m.TrainAccuracy)),
        ["test-loss"] = ("Test loss", m => m.TestLoss),
        ["train-loss"] = ("Training loss", m => m.TrainLoss),
    };

    public static Command Create() => new("plot", "PNG plots of finished runs and analyses: training curves, ablation curves, lines from a CSV table.")
    {
        Training(),
        Ablation(),
        Lines(),
    };

    private static Option<string[]> Files(string name, string description, string helpName) => new(name)
    {
        Description = description,
        HelpName = helpName,
        Required = true,
        AllowMultipleArgumentsPerToken = true,
    };

    private static Option<string[]> Labels(string what) => new("--label")
    {
        Description = $"Legend text for each {what}, in order; equal labels share a colour (e.g. the seeds of one model)",
        HelpName = "text",
        AllowMultipleArgumentsPerToken = true,
    };

    private static Option<string?> Out() => CliOptions.Path("--out", "The PNG file to write", "file", required: true);

    private static Option<string?> Title(string what) => new("--title") { Description = $"The plot's title [default: {what}]", HelpName = "text" };

    private static Command Training()
    {
        var runs = Files("--run", "Run directories of cedsl train (or their metrics.csv files)", "dir");
        var labels = Labels("run");
        var measure = CliOptions.Choice("--measure", "What to plot per epoch", "test-error", [.. TrainingMeasures.Keys]);
        var title = Title("the measure");
        var output = Out();
        var command = new Command("training", "One line per run of a measure per epoch (test error by default), from the runs' metrics.csv.")
        {
            runs, labels, measure, title, output,
        };
        CommandAction.Set(command, (parse, text) =>
        {
            string[] paths = parse.GetValue(runs)!;
            string[] names = LabelsFor(parse.GetValue(labels), paths, path => Path.GetFileName(RunDirectory(path)));
            var (yLabel, value) = TrainingMeasures[parse.GetValue(measure)!];
            var series = new List<LineSeries>();
            for (int i = 0; i < paths.Length; i++)
            {
                var rows = MetricsCsv.Read(MetricsFile(paths[i])).Select(m => (m.Epoch, Value: value(m))).Where(r => r.Value is not null).ToList();
                if (rows.Count == 0)
                    throw new UserException($"--run '{paths[i]}': its metrics.csv has no epoch with a value to plot.");
                series.Add(new LineSeries(names[i], [.. rows.Select(r => (double)r.Epoch)], [.. rows.Select(r => r.Value!.Value)]));
            }
            string file = parse.GetValue(output)!;
            LinePlots.Save(file, parse.GetValue(title) ?? yLabel.Replace(" (%)", "", StringComparison.Ordinal) + " per epoch", "Epoch", yLabel, series);
            text.Output.WriteLine($"wrote {file}");
            return 0;
        });
        return command;
    }

    private static Command Ablation()
    {
        var files = Files("--csv", "ablation.csv files of cedsl analyze", "file");
        var labels = Labels("file [default: the model it names]");
        var output = Out();
        var command = new Command("ablation", "The cumulative random channel-ablation curves of several analyses in one plot; curves with the same label are pooled (mean and s.d. over all their orders).")
        {
            files, labels, output,
        };
        CommandAction.Set(command, (parse, text) =>
        {
            string[] paths = parse.GetValue(files)!;
            string[]? given = parse.GetValue(labels);
            if (given is { Length: > 0 } && given.Length != paths.Length)
                throw new UserException($"--label: {given.Length} labels for {paths.Length} files; give one per file or none.");
            var curves = new List<(string Label, string File, AblationCurve Curve)>();
            for (int i = 0; i < paths.Length; i++)
                foreach (var curve in AnalysisCsv.ReadAblation(paths[i]))
                    curves.Add((given is { Length: > 0 } ? given[i] : curve.Model, paths[i], curve));
            var pooled = curves.GroupBy(c => c.Label, StringComparer.Ordinal)
                .Select(g => Pool(g.Key, [.. g.Select(c => (c.File, c.Curve))])).ToList();
            string file = parse.GetValue(output)!;
            AnalysisPlots.SaveAblationCurves(file, pooled);
            text.Output.WriteLine($"wrote {file}");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// One curve labelled <paramref name="label"/> holding, at each ratio, the accuracies of every curve
    /// (e.g. 3 seeds x 3 orders), which must have the same ratios.
    /// </summary>
    internal static AblationCurve Pool(string label, IReadOnlyList<(string File, AblationCurve Curve)> curves)
    {
        var first = curves[0];
        foreach (var other in curves.Skip(1))
            if (!other.Curve.Points.Select(p => p.Ratio).SequenceEqual(first.Curve.Points.Select(p => p.Ratio)))
                throw new UserException($"--label '{label}': '{other.File}' has other ablation ratios than '{first.File}', so their curves cannot be pooled.");
        return first.Curve with
        {
            Model = curves.Count == 1 ? label : $"{label} ({curves.Count} runs)",
            Points = [.. first.Curve.Points.Select((point, index) =>
                point with { Accuracies = [.. curves.SelectMany(c => c.Curve.Points[index].Accuracies)] })],
        };
    }

    private static Command Lines()
    {
        var file = new Option<string?>("--csv") { Description = "A CSV table with a header line (numbers in invariant culture; an empty cell leaves its point out)", HelpName = "file", Required = true };
        var x = new Option<string>("--x") { Description = "The column of the x values", HelpName = "column", Required = true };
        var y = new Option<string[]>("--y") { Description = "The columns of the y values (one line each, per series)", HelpName = "column", Required = true, AllowMultipleArgumentsPerToken = true };
        var seriesColumn = new Option<string?>("--series") { Description = "A column whose values split the rows into lines (e.g. the model)", HelpName = "column" };
        var logX = new Option<bool>("--log-x") { Description = "A logarithmic x axis, with a tick at every x value" };
        var title = Title("the y columns");
        var xLabel = new Option<string?>("--x-label") { Description = "The x axis label [default: the x column]", HelpName = "text" };
        var yLabel = new Option<string?>("--y-label") { Description = "The y axis label [default: the y columns]", HelpName = "text" };
        var output = Out();
        var command = new Command("lines", "Lines of y against x from a CSV table, one per y column and value of the series column.")
        {
            file, x, y, seriesColumn, logX, title, xLabel, yLabel, output,
        };
        CommandAction.Set(command, (parse, text) =>
        {
            string path = parse.GetValue(file)!, xName = parse.GetValue(x)!;
            string[] yNames = parse.GetValue(y)!;
            string? seriesName = parse.GetValue(seriesColumn);
            var table = CsvTable.Read(path);
            var series = new List<LineSeries>();
            List<(string Group, IReadOnlyList<CsvRow> Rows)> groups = seriesName is null
                ? [("", table.Rows)]
                : [.. table.Rows.GroupBy(row => table.Text(row, seriesName)).Select(g => (g.Key, (IReadOnlyList<CsvRow>)[.. g]))];
            foreach (var (group, rows) in groups)
                foreach (string yName in yNames)
                {
                    var points = rows.Select(row => (X: table.Number(row, xName), Y: table.Number(row, yName)))
                        .Where(p => p.X is not null && p.Y is not null).ToList();
                    if (points.Count == 0)
                        continue;
                    string label = (group, yNames.Length) switch
                    {
                        ("", _) => yName,
                        (_, 1) => group,
                        _ => $"{group}: {yName}",
                    };
                    series.Add(new LineSeries(label, [.. points.Select(p => p.X!.Value)], [.. points.Select(p => p.Y!.Value)]));
                }
            if (series.Count == 0)
                throw new UserException($"--csv '{path}': no row has both an x value ({xName}) and a y value ({string.Join(", ", yNames)}).");
            string png = parse.GetValue(output)!;
            string yText = parse.GetValue(yLabel) ?? string.Join(", ", yNames);
            LinePlots.Save(png, parse.GetValue(title) ?? yText, parse.GetValue(xLabel) ?? xName, yText, series, parse.GetValue(logX));
            text.Output.WriteLine($"wrote {png}");
            return 0;
        });
        return command;
    }

    private static string[] LabelsFor(string[]? given, string[] paths, Func<string, string> fallback)
    {
        if (given is { Length: > 0 } && given.Length != paths.Length)
            throw new UserException($"--label: {given.Length} labels for {paths.Length} runs; give one per run or none.");
        return given is { Length: > 0 } ? given : [.. paths.Select(fallback)];
    }

    private static string RunDirectory(string path) =>
        Path.GetFileName(path) == TrainCommand.MetricsFile ? Path.GetDirectoryName(Path.GetFullPath(path))! : Path.GetFullPath(path).TrimEnd('/');

    private static string MetricsFile(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, TrainCommand.MetricsFile) : path;
        if (!File.Exists(file))
            throw new UserException($"--run '{path}': no {TrainCommand.MetricsFile} there (give a run directory of cedsl train or its metrics.csv).");
        return file;
    }
}

/// <summary>A row of a <see cref="CsvTable"/> and its line number.</summary>
internal sealed record CsvRow(int Line, string[] Fields);

/// <summary>A plain CSV table (no quoting): a header of column names and rows of as many fields.</summary>
internal sealed record CsvTable(string Path, IReadOnlyList<string> Columns, IReadOnlyList<CsvRow> Rows)
{
    /// <exception cref="InvalidDataException">An empty file, a row with another number of fields, or a repeated column name.</exception>
    public static CsvTable Read(string path)
    {
        string[] lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0].Length == 0)
            throw new InvalidDataException($"'{path}' has no header line.");
        string[] columns = lines[0].Split(',');
        if (columns.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1) is { } repeated)
            throw new InvalidDataException($"'{path}': the column '{repeated.Key}' appears twice in the header.");
        var rows = new List<CsvRow>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
                continue;
            string[] fields = lines[i].Split(',');
            if (fields.Length != columns.Length)
                throw new InvalidDataException($"'{path}', line {i + 1}: {fields.Length} fields, expected {columns.Length}.");
            rows.Add(new CsvRow(i + 1, fields));
        }
        return new CsvTable(path, columns, rows);
    }

    public string Text(CsvRow row, string column) => row.Fields[Index(column)];

    /// <summary>The cell as a number, or null if it is empty.</summary>
    public double? Number(CsvRow row, string column)
    {
        string text = Text(row, column);
        if (text.Length == 0)
            return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
            throw new InvalidDataException($"'{Path}', line {row.Line}: the {column} value '{text}' is not a finite number.");
        return value;
    }

    private int Index(string column)
    {
        int index = Columns.ToList().IndexOf(column);
        return index >= 0 ? index : throw new UserException($"'{Path}' has no column '{column}'; its columns: {string.Join(", ", Columns)}.");
    }
}
