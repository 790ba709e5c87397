using CeDsl.Analysis;
using CeDsl.Runtime.Tests.IO;

namespace CeDsl.Runtime.Tests.Analysis;

public class AnalysisCsvTests
{
    private static ChannelStatisticsReport Statistics(string model = "BN") => new(model, new ChannelStatisticsOptions(), 10,
    [
        new LayerChannelStatistics("bn1", null, "relu1", Rectifier.ReLU, 4, 3, 2, 2, 1, 640, 160, 1, 1),
        new LayerChannelStatistics("layer1.0.bn2", "layer1.0.ce", null, Rectifier.None, 8, 1, 1, 4, 1, null, null, null, 0),
        new LayerChannelStatistics("layer1.0.bn1", null, "layer1.0.relu", Rectifier.ReLU, 6, 0, 0, 3, 0, 960, 480, 0, 3),
    ]);

    private static AblationCurve Curve(string model = "CE") => new(model, ["bn1", "layer1.0.bn1"], 24, AblationSite.NormalizationOutput, 7, 96,
    [
        new AblationPoint(0, 0, [0.9, 0.9]),
        new AblationPoint(0.5, 12, [0.5, 0.75, 1]),
    ]);

    [Fact]
    public void Statistics_file_has_one_row_per_layer_an_overall_row_and_a_row_of_the_layers_before_a_rectifier()
    {
        using var directory = new TempDirectory();
        string path = directory.File("channels.csv");

        AnalysisCsv.WriteStatistics(path, [Statistics()]);

        // Overall: 18 channels of 3 layers. Before a rectifier: bn1 and layer1.0.bn1 (10 channels),
        // |gamma| < 1e-3 in 1 + 3 of them, sparsity the mean of 0.25 and 0.5.
        Assert.Equal(
            "model,layer,equilibrium,activation,rectifier,channels,gamma_threshold,gamma_below,abs_gamma_below,beta_nonpositive,inhibited," +
            "gamma_below_ratio,abs_gamma_below_ratio,beta_nonpositive_ratio,inhibited_ratio," +
            "activation_threshold,images,activation_values,sparse_values,sparsity_ratio,dead_channels,dead_channel_ratio," +
            "zero_gamma_threshold,zero_gamma,zero_gamma_ratio\n" +
            "BN,bn1,,relu1,ReLU,4,0.1,3,2,2,1,0.75,0.5,0.5,0.25,0.001,10,640,160,0.25,1,0.25,0.001,1,0.25\n" +
            "BN,layer1.0.bn2,layer1.0.ce,,None,8,0.1,1,1,4,1,0.125,0.125,0.5,0.125,0.001,10,,,,,,0.001,0,0\n" +
            "BN,layer1.0.bn1,,layer1.0.relu,ReLU,6,0.1,0,0,3,0,0,0,0.5,0,0.001,10,960,480,0.5,0,0,0.001,3,0.5\n" +
            "BN,(overall),,,,18,0.1,4,3,9,2,0.2222222222222222,0.16666666666666666,0.5,0.1111111111111111,0.001,10,1600,640,0.375,1,0.1,0.001,4,0.2222222222222222\n" +
            "BN,(before rectifier),,,,10,0.1,3,2,5,1,0.3,0.2,0.5,0.1,0.001,10,1600,640,0.375,1,0.1,0.001,4,0.4\n",
            File.ReadAllText(path));
        Assert.Equal(["channels.csv"], directory.Entries());
    }

    [Fact]
    public void Statistics_files_read_back_per_model()
    {
        using var directory = new TempDirectory();
        string path = directory.File("channels.csv");
        var ce = Statistics("CE") with { Options = new ChannelStatisticsOptions { GammaThreshold = 1e-3, ActivationThreshold = 0.01, ZeroGammaThreshold = 1e-5 }, Images = 3 };

        AnalysisCsv.WriteStatistics(path, [Statistics(), ce]);
        var read = AnalysisCsv.ReadStatistics(path);

        Assert.Equal(2, read.Count);
        foreach (var (expected, actual) in new[] { Statistics(), ce }.Zip(read))
        {
            Assert.Equal((expected.Model, expected.Options, expected.Images), (actual.Model, actual.Options, actual.Images));
            Assert.Equal(expected.Layers, actual.Layers);
        }
    }

    [Fact]
    public void Ablation_file_has_one_row_per_point_with_every_repeat()
    {
        using var directory = new TempDirectory();
        string path = directory.File("ablation.csv");

        AnalysisCsv.WriteAblation(path, [Curve()]);

        Assert.Equal(
            "model,site,seed,targets,total_channels,images,ratio,ablated_channels,repeats,mean_accuracy,std_accuracy,accuracies\n" +
            "CE,NormalizationOutput,7,bn1;layer1.0.bn1,24,96,0,0,2,0.9,0,0.9;0.9\n" +
            "CE,NormalizationOutput,7,bn1;layer1.0.bn1,24,96,0.5,12,3,0.75,0.25,0.5;0.75;1\n",
            File.ReadAllText(path));
    }

    [Fact]
    public void Ablation_files_read_back_per_model()
    {
        using var directory = new TempDirectory();
        string path = directory.File("ablation.csv");
        var bn = Curve("BN") with { Site = AblationSite.PreActivation, Seed = ulong.MaxValue };

        AnalysisCsv.WriteAblation(path, [bn, Curve()]);
        var read = AnalysisCsv.ReadAblation(path);

        Assert.Equal(2, read.Count);
        foreach (var (expected, actual) in new[] { bn, Curve() }.Zip(read))
        {
            Assert.Equal((expected.Model, expected.TotalChannels, expected.Site, expected.Seed, expected.Images),
                (actual.Model, actual.TotalChannels, actual.Site, actual.Seed, actual.Images));
            Assert.Equal(expected.Targets, actual.Targets);
            Assert.Equal(expected.Points.Select(p => (p.Ratio, p.AblatedChannels)), actual.Points.Select(p => (p.Ratio, p.AblatedChannels)));
            Assert.Equal(expected.Points.SelectMany(p => p.Accuracies), actual.Points.SelectMany(p => p.Accuracies));
        }
    }

    [Fact]
    public void A_name_the_format_cannot_hold_is_refused_and_the_existing_file_kept()
    {
        using var directory = new TempDirectory();
        string path = directory.File("ablation.csv");
        AnalysisCsv.WriteAblation(path, [Curve()]);
        byte[] before = File.ReadAllBytes(path);

        var error = Assert.Throws<ArgumentException>(() => AnalysisCsv.WriteAblation(path, [Curve("BN, wd 1e-4")]));

        Assert.Contains("'BN, wd 1e-4'", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["ablation.csv"], directory.Entries());
    }

    [Fact]
    public void Writing_into_a_missing_directory_creates_it()
    {
        using var directory = new TempDirectory();
        string path = Path.Combine(directory.Path, "missing", "channels.csv");

        AnalysisCsv.WriteStatistics(path, [Statistics()]);

        Assert.Single(AnalysisCsv.ReadStatistics(path));
        Assert.Equal(["channels.csv"], Directory.GetFileSystemEntries(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public void Writing_under_a_file_fails_cleanly()
    {
        using var directory = new TempDirectory();
        File.WriteAllText(Path.Combine(directory.Path, "taken"), "a file");

        Assert.Throws<IOException>(() => AnalysisCsv.WriteStatistics(Path.Combine(directory.Path, "taken", "channels.csv"), [Statistics()]));

        Assert.Equal(["taken"], directory.Entries());
    }

    [Theory]
    [InlineData("model,site\nCE,x\n", "does not start with the header")]
    [InlineData("{header}\nCE,NormalizationOutput,7,bn1,24,96,zero,0,1,0.9,0,0.9\n", "line 2")]
    [InlineData("{header}\nCE,NormalizationOutput,7,bn1,24,96,0,0,2,0.9,0,0.9\n", "line 2: 1 accuracies for 2 repeats")]
    [InlineData("{header}\nCE,Somewhere,7,bn1,24,96,0,0,1,0.9,0,0.9\n", "unknown ablation site 'Somewhere'")]
    [InlineData("{header}\nCE,NormalizationOutput,7,bn1,24,96,0,0,1,0.9,0\n", "line 2: 11 fields, expected 12")]
    [InlineData("{header}\nCE,NormalizationOutput,7,bn1,24,96,0,0,1,0.9,0,0.9\nCE,NormalizationOutput,8,bn1,24,96,0.5,12,1,0.5,0,0.5\n", "line 3: model 'CE' has rows with another site, seed")]
    [InlineData("{header}\nCE,NormalizationOutput,7,bn1,24,96,0,0,1,0.9,0,0.9\nBN,NormalizationOutput,7,bn1,24,96,0,0,1,0.9,0,0.9\nCE,NormalizationOutput,7,bn1,24,96,0.5,12,1,0.5,0,0.5\n", "line 4: the rows of model 'CE' are not contiguous")]
    public void Bad_ablation_files_are_clear_errors(string content, string message)
    {
        using var directory = new TempDirectory();
        string path = directory.File("ablation.csv");
        File.WriteAllText(path, content.Replace("{header}", AnalysisCsv.AblationHeader));

        var error = Assert.Throws<InvalidDataException>(() => AnalysisCsv.ReadAblation(path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_statistics_file_with_a_bad_rectifier_names_the_line()
    {
        using var directory = new TempDirectory();
        string path = directory.File("channels.csv");
        AnalysisCsv.WriteStatistics(path, [Statistics()]);
        File.WriteAllText(path, File.ReadAllText(path).Replace(",ReLU,", ",Sigmoid,"));

        var error = Assert.Throws<InvalidDataException>(() => AnalysisCsv.ReadStatistics(path));

        Assert.Contains("line 2: unknown rectifier 'Sigmoid'", error.Message, StringComparison.Ordinal);
    }
}
