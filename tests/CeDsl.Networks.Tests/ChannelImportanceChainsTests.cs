using CeDsl.Analysis;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>ECDM channel importance found on the BN -> ReLU -> conv chains of zoo networks.</summary>
public class ChannelImportanceChainsTests
{
    private static IReadOnlyList<ChannelImportanceChain> Chains(string name)
    {
        torch.manual_seed(2);
        using var network = Zoo.Create(name, inChannels: 1);
        network.train();
        using (no_grad()) network.call(torch.randn(4, 1, 32, 32)).Dispose(); // estimates CE's running statistics
        network.eval();
        return ChannelImportanceChains.Analyze(network, [1, 32, 32]);
    }

    [Fact]
    public void ResNetChainsAreTheStemAndEachBlocksFirstUnit()
    {
        var chains = Chains("resnet20");
        Assert.Equal(10, chains.Count);
        Assert.Contains(chains, c => c is { Normalization: "bn1", Convolution: "layer1.0.conv1" });
        Assert.Contains(chains, c => c is { Normalization: "layer3.2.bn1", Convolution: "layer3.2.conv2" });
        // bn2 feeds the residual addition, not a ReLU directly.
        Assert.DoesNotContain(chains, c => c.Normalization.EndsWith("bn2", StringComparison.Ordinal));
        Assert.All(chains, c => Assert.InRange(c.Report.Gini, 0, 1));
    }

    [Fact]
    public void CeBetweenTheNormAndTheReLUIsNotAChain()
    {
        var chains = Chains("ce-resnet20");
        Assert.Equal(9, chains.Count);
        Assert.DoesNotContain(chains, c => c.Normalization == "bn1");
    }

    [Fact]
    public void SelectiveConvolutionsReportTheirOwnEcdm()
    {
        var plain = Chains("preresnet29");
        var selective = Chains("sconv-preresnet29");
        Assert.Equal(27, plain.Count(c => c.Normalization.Contains(".brc_", StringComparison.Ordinal)));
        Assert.Equal(27, selective.Count);
        Assert.Contains(selective, c => c is { Normalization: "block2.0.brc_2.norm", Convolution: "block2.0.brc_2.conv" });
    }

    [Fact]
    public void EqualImportanceGivesGiniZero()
    {
        // A chain whose channels all matter equally: identical BN parameters and convolution columns.
        using var network = nn.Sequential(("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()), ("conv", nn.Conv2d(4, 3, 1, bias: false)));
        using (no_grad())
            ((TorchSharp.Modules.Conv2d)network[2]).weight!.fill_(0.5);
        network.eval();
        var chain = Assert.Single(ChannelImportanceChains.Analyze(network, [4, 8, 8]));
        Assert.Equal(0, chain.Report.Gini, 1e-9);
        Assert.Contains("(overall)", ChannelImportanceChains.ToCsv("m", [chain]));
    }

    [Fact]
    public void ATrainingModeNetworkIsRefused()
    {
        using var network = Zoo.Create("resnet20");
        network.train();
        Assert.Throws<InvalidOperationException>(() => ChannelImportanceChains.Analyze(network, [3, 32, 32]));
    }
}
