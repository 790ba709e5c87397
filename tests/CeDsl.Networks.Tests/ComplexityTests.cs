using CeDsl.Analysis;
using CeDsl.Layers;

namespace CeDsl.Networks.Tests;

/// <summary>Multiply-accumulates per image at 224x224 against the published figures, and the summary itself.</summary>
public class ComplexityTests
{
    private static NetworkSummary Summarize(string name)
    {
        var entry = Zoo.Find(name);
        using var network = entry.Create();
        return NetworkSummary.Of(network, entry.InputShape);
    }

    private static double Giga(long count, int digits) => Math.Round(count / 1e9, digits);

    [Theory]
    // torchvision's published GFLOPS (convolutions and linear layers).
    [InlineData("resnet18", 1.81)]
    [InlineData("resnet50", 4.09)]
    [InlineData("resnet101", 7.80)]
    [InlineData("mobilenetv2", 0.30)]
    [InlineData("shufflenetv2-1.0x", 0.14)]
    [InlineData("shufflenetv2-0.5x", 0.04)]
    public void ConvolutionAndLinearMultiplyAccumulatesAreTorchvisions(string name, double giga) =>
        Assert.Equal(giga, Giga(Summarize(name).MultiplyAccumulates, 2));

    [Theory]
    // The figures FLOP counters print for ResNets (1.82 / 4.11 / 7.83 G) add one operation per
    // normalization and activation element.
    [InlineData("resnet18", 1.82)]
    [InlineData("resnet50", 4.11)]
    [InlineData("resnet101", 7.83)]
    public void WithNormAndActivationElementsResNetsGiveTheUsualFigures(string name, double giga)
    {
        var summary = Summarize(name);
        Assert.Equal(giga, Giga(summary.MultiplyAccumulates + summary.ElementwiseOperations, 2));
    }

    [Theory]
    // The ShuffleNetV2 paper's own counts (146 M, 41 M) for the architecture torchvision implements.
    [InlineData("shufflenetv2-1.0x", 146e6)]
    [InlineData("shufflenetv2-0.5x", 41e6)]
    public void ShuffleNetV2IsWithinOnePointFivePercentOfItsPapersCount(string name, double published)
    {
        var macs = Summarize(name).MultiplyAccumulates;
        Assert.InRange(macs, published * 0.985, published);
    }

    [Fact]
    public void ConvolutionCountIsExactForAKnownLayer()
    {
        // ResNet-50's stem: 64 x 112 x 112 outputs, 3 x 7 x 7 products each; fc: 2048 x 1000.
        var summary = Summarize("resnet50");
        Assert.Equal(64L * 112 * 112 * 3 * 7 * 7, summary.Layers.Single(l => l.Name == "conv1").MultiplyAccumulates);
        Assert.Equal(2048L * 1000, summary.Layers.Single(l => l.Name == "fc").MultiplyAccumulates);
        Assert.Equal(new long[] { 256, 56, 56 }, summary.Layers.Single(l => l.Name == "layer1.0.bn3").OutputShape);
        Assert.Equal(new long[] { 1000 }, summary.Layers.Single(l => l.Name == "fc").OutputShape);
        Assert.Equal(25_557_032, summary.Parameters);
    }

    [Fact]
    public void CeCostsItsMapsVarianceAndGates()
    {
        var summary = Summarize("ce-resnet50");
        // layer1.0.ce: C = 256 at 56x56, group size 16, gate 256 -> 64 -> 256.
        long expected = 256L * 16 * 56 * 56 + 256L * 56 * 56 + 2 * 256L * 64;
        Assert.Equal(expected, summary.Layers.Single(l => l.Name == "layer1.0.ce").MultiplyAccumulates);
        // The stem CE mixes groups of 64: 64 x 64 per pixel at 112x112.
        Assert.Equal(64L * 64 * 112 * 112 + 64L * 112 * 112 + 2 * 64L * 16, summary.Layers.Single(l => l.Name == "ce1").MultiplyAccumulates);
        var baseline = Summarize("resnet50");
        Assert.Equal(summary.MultiplyAccumulatesOf(typeof(ChannelEquilibrium)), summary.MultiplyAccumulates - baseline.MultiplyAccumulates);
    }

    [Fact]
    public void SummaryLeavesTheNetworkAsItWas()
    {
        using var network = Zoo.Create("ce-resnet20", inChannels: 1);
        network.eval();
        var before = network.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        var summary = NetworkSummary.Of(network, [1, 32, 32]);
        Assert.False(network.training);
        Assert.All(network.modules(), m => Assert.False(m.training));
        foreach (var (key, value) in network.state_dict())
            Assert.True(value.equal(before[key]).all().item<bool>(), key);
        Assert.Equal(10, summary.Layers.Count(l => l.Type == nameof(ChannelEquilibrium)));
    }

    [Fact]
    public void TableListsLayersAndTotals()
    {
        var table = Summarize("resnet20").ToTable();
        Assert.Contains("layer3.2.conv2", table);
        Assert.Contains("64x8x8", table);
        Assert.Contains("Parameters: 272,474 (trainable 272,474)", table);
    }

    [Fact]
    public void AnInputTheNetworkCannotTakeIsAClearError()
    {
        using var network = Zoo.Create("resnet20");
        var error = Assert.Throws<ArgumentException>(() => NetworkSummary.Of(network, [5, 32, 32]));
        Assert.Contains("does not accept inputs of shape (5, 32, 32)", error.Message);
        Assert.Throws<ArgumentException>(() => NetworkSummary.Of(network, [3, 32]));
    }
}
