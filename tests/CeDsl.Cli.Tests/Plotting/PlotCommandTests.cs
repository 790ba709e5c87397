using CeDsl.Analysis;
using CeDsl.Cli.Commands;
using CeDsl.Cli.Plotting;

namespace CeDsl.Cli.Tests.Plotting;

public sealed class PlotCommandTests : IDisposable
{
    private const string MetricsHeader = "epoch,step,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,images_per_second,seconds";

    private readonly string _directory = Directory.CreateTempSubdirectory("cedsl-plot-command-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_directory, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>A run directory whose metrics.csv has the given test accuracies, one epoch each.</summary>
    private string Run(string name, params double[] testAccuracies) => Path.GetDirectoryName(Write($"{name}/metrics.csv",
        MetricsHeader + "\n" + string.Concat(testAccuracies.Select((a, i) =>
            FormattableString.Invariant($"{i + 1},{100 * (i + 1)},0.1,{1.0 / (i + 1)},{a},0.5,{a},100.0,10.000\n")))))!;

    private static byte[] Png(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        return bytes;
    }

    [Fact]
    public void Training_curves_of_several_runs_are_one_png_and_their_data_shows()
    {
        string bn = Run("resnet20-s1", 0.80, 0.86, 0.90), ce = Run("ce-resnet20-s1", 0.82, 0.87, 0.91);
        string first = Path.Combine(_directory, "a.png"), second = Path.Combine(_directory, "b.png");

        var result = CliRun.Succeeds("plot", "training", "--run", bn, ce, "--label", "BN", "CE", "--out", first);
        CliRun.Succeeds("plot", "training", "--run", bn, Path.Combine(Run("other", 0.5, 0.6, 0.7), "metrics.csv"), "--label", "BN", "CE", "--out", second);

        Assert.Contains($"wrote {first}", result.Output);
        Assert.NotEqual(Png(first), Png(second));
    }

    [Fact]
    public void Training_curves_refuse_a_wrong_number_of_labels_and_a_directory_without_metrics()
    {
        string bn = Run("resnet20-s1", 0.8);
        string png = Path.Combine(_directory, "x.png");

        var labels = CliRun.Run("plot", "training", "--run", bn, bn, "--label", "BN", "--out", png);
        var missing = CliRun.Run("plot", "training", "--run", _directory, "--out", png);

        Assert.Equal(1, labels.ExitCode);
        Assert.Contains("cedsl plot training: error: --label: 1 labels for 2 runs", labels.Error);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains($"--run '{_directory}': no metrics.csv there", missing.Error);
        Assert.False(File.Exists(png));
    }

    [Fact]
    public void Lines_leave_empty_cells_out_and_name_a_missing_column()
    {
        string table = Write("wd.csv", "model,weight_decay,error\nBN,0.0001,7.1\nBN,0.001,7.5\nBN,0.005,\nCE,0.0001,6.9\nCE,0.001,\nCE,0.005,\n");
        string png = Path.Combine(_directory, "wd.png");

        CliRun.Succeeds("plot", "lines", "--csv", table, "--x", "weight_decay", "--y", "error", "--series", "model", "--log-x", "--out", png);
        var missing = CliRun.Run("plot", "lines", "--csv", table, "--x", "weight_decay", "--y", "sparsity", "--out", png + "2");
        var empty = CliRun.Run("plot", "lines", "--csv", Write("pending.csv", "model,weight_decay,error\nBN,0.001,\n"), "--x", "weight_decay", "--y", "error", "--out", png + "3");

        Png(png);
        Assert.Contains("cedsl plot lines: error: ", missing.Error);
        Assert.Contains("has no column 'sparsity'; its columns: model, weight_decay, error.", missing.Error);
        Assert.Contains("no row has both an x value (weight_decay) and a y value (error)", empty.Error);
        Assert.False(File.Exists(png + "2") || File.Exists(png + "3"));
    }

    [Fact]
    public void Lines_refuse_a_cell_that_is_not_a_number_by_line_and_column()
    {
        string table = Write("bad.csv", "x,y\n1,2\n2,two\n");

        var result = CliRun.Run("plot", "lines", "--csv", table, "--x", "x", "--y", "y", "--out", Path.Combine(_directory, "bad.png"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("line 3: the y value 'two' is not a finite number", result.Error);
    }

    private static AblationCurve Curve(string model, params double[][] accuracies) => new(model, ["bn1"], 16, AblationSite.NormalizationOutput, 1, 100,
        [.. accuracies.Select((a, i) => new AblationPoint(i * 0.5, i * 8, a))]);

    [Fact]
    public void Ablation_curves_with_one_label_are_pooled_ratio_by_ratio()
    {
        var seed1 = Curve("resnet20", [0.9, 0.9], [0.5, 0.6]);
        var seed2 = Curve("resnet20", [0.8, 0.8], [0.3, 0.4]);

        var pooled = PlotCommand.Pool("BN", [("s1/ablation.csv", seed1), ("s2/ablation.csv", seed2)]);

        Assert.Equal("BN (2 runs)", pooled.Model);
        Assert.Equal([0.0, 0.5], pooled.Points.Select(p => p.Ratio));
        Assert.Equal([0.9, 0.9, 0.8, 0.8], pooled.Points[0].Accuracies);
        Assert.Equal([0.5, 0.6, 0.3, 0.4], pooled.Points[1].Accuracies);
        Assert.Equal(0.45, pooled.Points[1].Mean, 12);
        Assert.Equal("BN", PlotCommand.Pool("BN", [("s1/ablation.csv", seed1)]).Model);
    }

    [Fact]
    public void Ablation_curves_with_other_ratios_are_not_pooled()
    {
        var seed1 = Curve("resnet20", [0.9], [0.5]);
        var other = seed1 with { Points = [seed1.Points[0], seed1.Points[1] with { Ratio = 0.4 }] };

        var error = Assert.Throws<UserException>(() => PlotCommand.Pool("BN", [("s1.csv", seed1), ("s2.csv", other)]));

        Assert.Contains("'s2.csv' has other ablation ratios than 's1.csv'", error.Message);
    }

    [Fact]
    public void The_ablation_command_reads_the_files_analyze_writes()
    {
        string a = Path.Combine(_directory, "a.csv"), b = Path.Combine(_directory, "b.csv"), png = Path.Combine(_directory, "ablation.png");
        AnalysisCsv.WriteAblation(a, [Curve("resnet20", [0.9, 0.9], [0.5, 0.6])]);
        AnalysisCsv.WriteAblation(b, [Curve("ce-resnet20", [0.9, 0.8], [0.7, 0.6])]);

        CliRun.Succeeds("plot", "ablation", "--csv", a, b, "--label", "BN", "CE", "--out", png);

        Png(png);
    }

    [Theory]
    [InlineData(new double[] { 1, 2 }, new double[] { 1 }, false, "2 x values and 1 y values")]
    [InlineData(new double[] { 0, 1 }, new double[] { 1, 2 }, true, "x value <= 0")]
    [InlineData(new double[] { 1, double.NaN }, new double[] { 1, 2 }, false, "not finite")]
    public void Line_plots_refuse_data_they_cannot_draw(double[] x, double[] y, bool logX, string message)
    {
        string png = Path.Combine(_directory, "bad.png");

        var error = Assert.Throws<ArgumentException>(() => LinePlots.Save(png, "t", "x", "y", [new LineSeries("BN", x, y)], logX));

        Assert.Contains(message, error.Message);
        Assert.Contains("'BN'", error.Message);
        Assert.False(File.Exists(png));
    }
}
