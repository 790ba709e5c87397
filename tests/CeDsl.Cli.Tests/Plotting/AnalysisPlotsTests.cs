using System.Buffers.Binary;
using CeDsl.Analysis;
using CeDsl.Cli.Plotting;

namespace CeDsl.Cli.Tests.Plotting;

public sealed class AnalysisPlotsTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private readonly string _directory = Directory.CreateTempSubdirectory("cedsl-plots-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Where a test's PNG goes; CEDSL_KEEP_PLOTS names a folder to keep copies in for a person to look at.</summary>
    private string File(string name) => Path.Combine(_directory, name);

    private static void Keep(string path)
    {
        if (Environment.GetEnvironmentVariable("CEDSL_KEEP_PLOTS") is { Length: > 0 } keep)
            System.IO.File.Copy(path, Path.Combine(keep, Path.GetFileName(path)), overwrite: true);
    }

    internal static AblationCurve Curve(string model, double decay, double spread) => new(model, ["bn1", "layer1.0.bn1"], 48,
        AblationSite.NormalizationOutput, 1, 1000,
        [.. Enumerable.Range(0, 10).Select(i =>
        {
            double ratio = i / 10.0;
            double mean = 0.1 + 0.82 * Math.Exp(-decay * ratio * ratio);
            return new AblationPoint(ratio, (int)Math.Round(48 * ratio), [mean - spread * ratio, mean, mean + spread * ratio]);
        })]);

    internal static ChannelStatisticsReport Statistics() => new("BN (wd 5e-3)", new ChannelStatisticsOptions(), 1000,
    [
        new LayerChannelStatistics("bn1", null, "relu", Rectifier.ReLU, 16, 2, 2, 9, 1, 1000, 420, 1, 1),
        new LayerChannelStatistics("layer1.0.bn1", null, "layer1.0.relu", Rectifier.ReLU, 16, 4, 4, 10, 3, 1000, 610, 2, 2),
        new LayerChannelStatistics("layer1.0.bn2", "layer1.0.ce", null, Rectifier.None, 16, 1, 1, 7, 0, null, null, null, 0),
        new LayerChannelStatistics("layer2.0.bn1", null, "layer2.0.relu", Rectifier.ReLU, 32, 12, 12, 25, 9, 1000, 780, 8, 6),
        new LayerChannelStatistics("layer2.0.downsample.1", null, null, Rectifier.None, 32, 0, 0, 16, 0, null, null, null, 0),
    ]);

    /// <summary>The PNG's signature, and its width and height from the IHDR chunk.</summary>
    private static (int Width, int Height) PngSize(string path)
    {
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        Assert.True(bytes.Length > 8 + 25, $"{path} is too short for a PNG");
        Assert.Equal(PngSignature, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public void The_ablation_plot_is_a_png_of_the_requested_size()
    {
        string path = File("ablation.png");

        AnalysisPlots.SaveAblationCurves(path, [Curve("BN", 6, 0.05), Curve("CE", 2, 0.03)], width: 640, height: 420);

        Assert.Equal((640, 420), PngSize(path));
        Assert.True(new FileInfo(path).Length > 10_000, "a plot with axes, labels, legend and two curves is not a few bytes");
        Assert.Equal(["ablation.png"], Directory.GetFiles(_directory).Select(Path.GetFileName));
        Keep(path);
    }

    [Fact]
    public void The_inhibited_channel_plot_is_a_png_of_the_requested_size()
    {
        string path = File("inhibited.png");

        AnalysisPlots.SaveInhibitedChannels(path, Statistics(), width: 900, height: 520);

        Assert.Equal((900, 520), PngSize(path));
        Assert.True(new FileInfo(path).Length > 10_000);
        Keep(path);
    }

    [Fact]
    public void A_deep_network_still_fits_its_layer_names()
    {
        string path = File("inhibited-deep.png");
        var layers = Enumerable.Range(0, 24).Select(i => new LayerChannelStatistics($"layer{1 + i / 6}.{i % 6 / 2}.bn{1 + i % 2}", null, null,
            i % 2 == 0 ? Rectifier.ReLU : Rectifier.None, 64, i, i, 20 + i, i / 2, i % 2 == 0 ? 6400 : null, i % 2 == 0 ? 100L * i : null, i % 2 == 0 ? i / 4 : null, i / 3));

        AnalysisPlots.SaveInhibitedChannels(path, Statistics() with { Layers = [.. layers] }, width: 1200, height: 560);

        Assert.Equal((1200, 560), PngSize(path));
        Keep(path);
    }

    [Fact]
    public void Different_data_draw_different_pictures()
    {
        string bn = File("bn.png"), ce = File("ce.png");

        AnalysisPlots.SaveAblationCurves(bn, [Curve("BN", 6, 0.05)]);
        AnalysisPlots.SaveAblationCurves(ce, [Curve("BN", 2, 0.05)]);

        Assert.NotEqual(System.IO.File.ReadAllBytes(bn), System.IO.File.ReadAllBytes(ce));
    }

    [Fact]
    public void Bad_arguments_are_clear_errors_and_write_nothing()
    {
        Assert.Throws<ArgumentException>(() => AnalysisPlots.SaveAblationCurves(File("a.png"), []));
        var error = Assert.Throws<ArgumentException>(() => AnalysisPlots.SaveAblationCurves(File("a.png"), [Curve("BN", 1, 0) with { Points = [] }]));
        Assert.Contains("'BN' has no points", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => AnalysisPlots.SaveInhibitedChannels(File("b.png"), Statistics(), width: 100));
        Assert.Throws<ArgumentException>(() => AnalysisPlots.SaveInhibitedChannels(File("b.png"), Statistics() with { Layers = [] }));
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }
}
