using CeDsl.Folding;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Folding;

/// <summary>The folded modules' chunked instance variance, against Tensor.var over H, W.</summary>
public class InstanceVarianceTests
{
    [Theory]
    [InlineData(1, 8, 5, 7)]
    [InlineData(5, 32, 128, 128)]   // 2 MB per float64 sample: chunks of 4 samples and 1
    [InlineData(3, 4, 1, 2)]        // the smallest map, H*W = 2
    public void Chunked_variance_equals_the_two_pass_variance_even_far_from_zero(long n, long c, long h, long w)
    {
        var x = randn(new[] { n, c, h, w }, dtype: float64, generator: new Generator(15))
                * linspace(0.01, 3, c, dtype: float64).view(1, c, 1, 1) + 1e3;

        var variance = FoldedAdaptiveInstanceInverse.InstanceVariance(x, "test");

        Assert.Equal(new[] { n, c }, variance.shape);
        // Mean / std reaches 1e5: rounding the centred values costs ~1e-11; an uncentred sum of
        // squares would be off by ~1e-6.
        Assert.True(variance.allclose(x.var(new long[] { 2, 3 }), rtol: 1e-9, atol: 0));
    }

    [Fact]
    public void A_folded_CE_over_several_variance_chunks_equals_the_unfolded_output()
    {
        var chain = TrainedChain.Train(FoldingEquivalenceTests.Conv(4, 32, 1, padding: 0, float64), nn.BatchNorm2d(32, dtype: float64),
            new CeDsl.Layers.ChannelEquilibrium(32, dtype: float64), seed: 31);
        using var folded = InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);

        var input = chain.Input(new Generator(16), n: 9, size: 96);

        FoldingEquivalenceTests.AssertClose(chain.Evaluate(input), FoldingEquivalenceTests.Evaluate(folded, input), 1e-10);
    }

    [Fact]
    public void Non_finite_input_is_reported_by_the_folded_module()
    {
        using var ce = new FoldedChannelEquilibrium(8, groupSize: 4);
        var x = randn(2, 8, 4, 4);
        x[1, 3, 2, 2] = float.NaN;

        var error = Assert.Throws<ArgumentException>(() => ce.call(x));

        Assert.Contains("FoldedChannelEquilibrium", error.Message);
        Assert.Contains("NaN or infinite", error.Message);
    }

    [Fact]
    public void A_single_position_map_is_rejected()
    {
        using var aii = new FoldedAdaptiveInstanceInverse(8);

        var error = Assert.Throws<ArgumentException>(() => aii.call(randn(2, 8, 1, 1)));

        Assert.Contains("FoldedAdaptiveInstanceInverse", error.Message);
        Assert.Contains("H*W = 1", error.Message);
    }
}
