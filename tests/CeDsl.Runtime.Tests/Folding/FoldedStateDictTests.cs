using CeDsl.Folding;
using CeDsl.IO;
using CeDsl.Layers;
using CeDsl.Runtime.Tests.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Folding;

public class FoldedStateDictTests
{
    private static FoldedChain Folded(string chainName, ScalarType? dtype = null)
    {
        var chain = FoldingEquivalenceTests.Trained(chainName, dtype);
        return InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);
    }

    private static Dictionary<string, long[]> Shapes(nn.Module module) =>
        module.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.shape);

    [Fact]
    public void A_folded_CE_chain_has_the_documented_names_and_shapes()
    {
        using var folded = Folded("conv-BN-CE");

        var shapes = Shapes(folded);

        Assert.Equal(
            new[] { "ce.AR.fc.0.weight", "ce.AR.fc.1.bias", "ce.AR.fc.1.weight", "ce.AR.fc.3.weight", "ce.AR.gate_scale", "ce.weight", "conv.bias", "conv.weight" },
            shapes.Keys.Order());
        Assert.Equal(new long[] { 32, 8, 3, 3 }, shapes["conv.weight"]);
        Assert.Equal(new long[] { 32 }, shapes["conv.bias"]);
        Assert.Equal(new long[] { 2, 16, 16 }, shapes["ce.weight"]);
        Assert.Equal(new long[] { 1 }, shapes["ce.AR.gate_scale"]);
        Assert.Equal(new long[] { 8, 32 }, shapes["ce.AR.fc.0.weight"]);
        Assert.Equal(new long[] { 8 }, shapes["ce.AR.fc.1.weight"]);
        Assert.Equal(new long[] { 32, 8 }, shapes["ce.AR.fc.3.weight"]);
    }

    [Theory]
    [InlineData("conv-BN", "conv.bias conv.weight")]
    [InlineData("conv-BN-BD", "conv.bias conv.weight")]
    [InlineData("conv-BN-AII", "aii.fc.0.weight aii.fc.1.bias aii.fc.1.weight aii.fc.3.weight aii.gate_scale conv.bias conv.weight")]
    [InlineData("conv-BN-SE", "conv.bias conv.weight se.fc.0.bias se.fc.0.weight se.fc.2.bias se.fc.2.weight")]
    [InlineData("conv-GN-BD (kept norm, BD as 1x1 map)", "bd.weight conv.weight norm.bias norm.weight")]
    [InlineData("conv-CE (no norm)", "ce.AR.fc.0.weight ce.AR.fc.1.bias ce.AR.fc.1.weight ce.AR.fc.3.weight ce.AR.gate_scale ce.weight conv.weight")]
    public void Every_chain_kind_has_the_documented_names(string chainName, string expected)
    {
        using var folded = Folded(chainName);

        Assert.Equal(expected.Split(' '), folded.state_dict().Keys.Order());
    }

    /// <summary>Empty folded modules of the right shapes, as a generator would build them before loading.</summary>
    public static TheoryData<string, string> RoundTrips() => new()
    {
        { "conv-BN-CE", ".safetensors" },
        { "conv-BN-CE", ".dat" },
        { "conv-BN-AII", ".safetensors" },
        { "conv-BN-SE", ".dat" },
        { "depthwise conv-BN-BD", ".safetensors" },
        { "conv-GN-BD (kept norm, BD as 1x1 map)", ".dat" },
    };

    private static FoldedChain EmptyFolded(string chainName) => chainName switch
    {
        "conv-BN-CE" => new FoldedChain(nn.Conv2d(8, 32, 3, padding: 1), null, new FoldedChannelEquilibrium(32)),
        "conv-BN-AII" => new FoldedChain(nn.Conv2d(8, 32, 3, padding: 1), null, new FoldedAdaptiveInstanceInverse(32)),
        "conv-BN-SE" => new FoldedChain(nn.Conv2d(8, 32, 3, padding: 1), null, new SqueezeExcitation(32, reduction: 8)),
        "depthwise conv-BN-BD" => new FoldedChain(nn.Conv2d(8, 8, 3, padding: 1, groups: InferenceFolding.DecorrelatedGroups(8, 8, 4))),
        "conv-GN-BD (kept norm, BD as 1x1 map)" =>
            new FoldedChain(nn.Conv2d(8, 32, 3, padding: 1, bias: false), nn.GroupNorm(8, 32), nn.Conv2d(32, 32, 1, groups: 2, bias: false)),
        _ => throw new ArgumentOutOfRangeException(nameof(chainName)),
    };

    [Theory]
    [MemberData(nameof(RoundTrips))]
    public void A_folded_chain_saved_and_loaded_into_empty_folded_modules_gives_identical_outputs(string chainName, string extension)
    {
        var chain = FoldingEquivalenceTests.Trained(chainName);
        using var folded = InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);
        using var directory = new TempDirectory();
        string path = directory.File("folded" + extension);

        StateDict.Save(folded, path);
        using var loaded = EmptyFolded(chainName);
        var report = StateDict.Load(loaded, path);
        loaded.eval();

        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        var input = chain.Input(new Generator(12));
        Assert.True(FoldingEquivalenceTests.Evaluate(loaded, input).equal(FoldingEquivalenceTests.Evaluate(folded, input)).all().item<bool>());
    }

    [Fact]
    public void Folded_chains_nest_under_their_names_in_a_network_and_round_trip_in_float64()
    {
        var first = FoldingEquivalenceTests.Trained("conv-BN-CE", float64);
        var second = TrainedChain.Train(FoldingEquivalenceTests.Conv(32, 32, 1, padding: 0, float64), nn.BatchNorm2d(32, dtype: float64),
            new AdaptiveInstanceInverse(32, dtype: float64), seed: 21);
        using var network = nn.Sequential(
            ("conv1", InferenceFolding.Chain(first.Conv, first.Norm, first.Block)),
            ("conv2", InferenceFolding.Chain(second.Conv, second.Norm, second.Block)));
        using var directory = new TempDirectory();
        string path = directory.File("network.safetensors");

        StateDict.Save(network, path);
        using var loaded = nn.Sequential(
            ("conv1", new FoldedChain(nn.Conv2d(8, 32, 3, padding: 1, dtype: float64), null, new FoldedChannelEquilibrium(32, dtype: float64))),
            ("conv2", new FoldedChain(nn.Conv2d(32, 32, 1, dtype: float64), null, new FoldedAdaptiveInstanceInverse(32, dtype: float64))));
        StateDict.Load(loaded, path);

        Assert.Contains("conv1.ce.AR.gate_scale", loaded.state_dict().Keys);
        Assert.Contains("conv2.aii.gate_scale", loaded.state_dict().Keys);
        var input = first.Input(new Generator(13));
        var unfolded = second.Evaluate(first.Evaluate(input));
        var output = FoldingEquivalenceTests.Evaluate(loaded, input);
        FoldingEquivalenceTests.AssertClose(unfolded, output, 1e-10);
        Assert.True(output.equal(FoldingEquivalenceTests.Evaluate(network, input)).all().item<bool>());
    }

    [Fact]
    public void A_folded_state_dict_does_not_load_into_the_unfolded_chain()
    {
        var chain = FoldingEquivalenceTests.Trained("conv-BN-CE");
        using var folded = InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);
        using var directory = new TempDirectory();
        string path = directory.File("folded.safetensors");
        StateDict.Save(folded, path);

        var error = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(chain.Unfolded, path));

        Assert.Contains("ce.weight", error.Message);
    }
}
