using CeDsl.Folding;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Folding;

/// <summary>
/// The folded chain's output equals the evaluation-mode output of the trained unfolded chain:
/// max |folded - unfolded| &lt;= tolerance * max |unfolded|, tolerance 1e-4 in float32 and 1e-10 in float64.
/// </summary>
public class FoldingEquivalenceTests
{
    private const double Float32Tolerance = 1e-4;
    private const double Float64Tolerance = 1e-10;

    /// <summary>Chain builders by name: (conv, norm, block) in the given element type.</summary>
    private static readonly Dictionary<string, Func<ScalarType, (Conv2d, nn.Module<Tensor, Tensor>?, nn.Module<Tensor, Tensor>?)>> Chains = new()
    {
        ["conv-BN"] = t => (Conv(8, 32, 3, padding: 1, t), nn.BatchNorm2d(32, dtype: t), null),
        ["conv(bias)-BN"] = t => (Conv(8, 32, 3, padding: 1, t, bias: true), nn.BatchNorm2d(32, dtype: t), null),
        ["conv-BN(no affine)"] = t => (Conv(8, 32, 1, padding: 0, t), nn.BatchNorm2d(32, affine: false, dtype: t), null),
        ["conv-BN-BD"] = t => (Conv(8, 32, 3, padding: 1, t), nn.BatchNorm2d(32, dtype: t), new BatchDecorrelation(32, dtype: t)),
        ["conv(bias)-BN-BD(d=8)"] = t => (Conv(8, 32, 3, padding: 1, t, bias: true), nn.BatchNorm2d(32, dtype: t), new BatchDecorrelation(32, groupSize: 8, dtype: t)),
        ["conv-BN-CE"] = t => (Conv(8, 32, 3, padding: 1, t), nn.BatchNorm2d(32, dtype: t), new ChannelEquilibrium(32, dtype: t)),
        ["conv-BN-CE(C=24, d 16->8)"] = t => (Conv(8, 24, 3, padding: 1, t), nn.BatchNorm2d(24, dtype: t), new ChannelEquilibrium(24, dtype: t)),
        ["conv-BN-AII"] = t => (Conv(8, 32, 3, padding: 1, t), nn.BatchNorm2d(32, dtype: t), new AdaptiveInstanceInverse(32, dtype: t)),
        ["conv-BN-SE"] = t => (Conv(8, 32, 3, padding: 1, t), nn.BatchNorm2d(32, dtype: t), new SqueezeExcitation(32, reduction: 8, dtype: t)),
        ["grouped conv-BN-CE"] = t => (Conv(8, 32, 3, padding: 1, t, groups: 4), nn.BatchNorm2d(32, dtype: t), new ChannelEquilibrium(32, dtype: t)),
        ["grouped conv-BN-BD (BD group spans 2 conv groups)"] = t =>
            (Conv(8, 32, 3, padding: 1, t, groups: 4), nn.BatchNorm2d(32, dtype: t), new BatchDecorrelation(32, dtype: t)),
        ["grouped conv-BN-BD (BD groups inside conv groups)"] = t =>
            (Conv(8, 32, 3, padding: 1, t, groups: 2), nn.BatchNorm2d(32, dtype: t), new BatchDecorrelation(32, groupSize: 8, dtype: t)),
        ["depthwise conv-BN-BD"] = t => (Conv(8, 8, 3, padding: 1, t, groups: 8), nn.BatchNorm2d(8, dtype: t), new BatchDecorrelation(8, groupSize: 4, dtype: t)),
        ["depthwise conv-BN-BD (dense)"] = t => (Conv(16, 16, 3, padding: 1, t, groups: 16, bias: true), nn.BatchNorm2d(16, dtype: t), new BatchDecorrelation(16, dtype: t)),
        ["depthwise conv-BN-CE"] = t => (Conv(16, 16, 3, padding: 1, t, groups: 16), nn.BatchNorm2d(16, dtype: t), new ChannelEquilibrium(16, groupSize: 8, dtype: t)),
        ["strided dilated conv(bias)-BN-CE"] = t =>
            (nn.Conv2d(8, 32, (3, 3), stride: (2, 1), padding: (2, 1), dilation: (2, 1), bias: true, dtype: t), nn.BatchNorm2d(32, dtype: t), new ChannelEquilibrium(32, dtype: t)),
        ["same-padded reflect conv-BN-BD"] = t =>
            (nn.Conv2d(8, 32, 3, Padding.Same, padding_mode: PaddingModes.Reflect, bias: false, dtype: t), nn.BatchNorm2d(32, dtype: t), new BatchDecorrelation(32, dtype: t)),
        ["conv(bias)-BD (no norm)"] = t => (Conv(8, 32, 3, padding: 1, t, bias: true), null, new BatchDecorrelation(32, dtype: t)),
        ["conv-CE (no norm)"] = t => (Conv(8, 32, 3, padding: 1, t), null, new ChannelEquilibrium(32, dtype: t)),
        ["conv-GN-CE (kept norm)"] = t => (Conv(8, 32, 3, padding: 1, t), nn.GroupNorm(4, 32, dtype: t), new ChannelEquilibrium(32, dtype: t)),
        ["conv-GN-BD (kept norm, BD as 1x1 map)"] = t => (Conv(8, 32, 3, padding: 1, t), nn.GroupNorm(8, 32, dtype: t), new BatchDecorrelation(32, dtype: t)),
        ["conv-IN-AII (kept norm)"] = t => (Conv(8, 32, 3, padding: 1, t), nn.InstanceNorm2d(32, affine: true, dtype: t), new AdaptiveInstanceInverse(32, dtype: t)),
        ["conv-LN-SE (kept norm)"] = t => (Conv(8, 32, 3, padding: 1, t), nn.LayerNorm(new long[] { 32, 9, 9 }, dtype: t), new SqueezeExcitation(32, reduction: 4, dtype: t)),
    };

    public static TheoryData<string, bool> Cases()
    {
        var data = new TheoryData<string, bool>();
        foreach (string name in Chains.Keys)
        {
            data.Add(name, false);
            data.Add(name, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Folded_output_equals_the_unfolded_evaluation_output(string chainName, bool float64Chain)
    {
        var dtype = float64Chain ? float64 : float32;
        var (conv, norm, block) = Chains[chainName](dtype);
        var chain = TrainedChain.Train(conv, norm, block, seed: chainName.Length);
        var before = Snapshot(chain.Unfolded);

        using var folded = InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);

        var input = chain.Input(new Generator(7));
        AssertClose(chain.Evaluate(input), Evaluate(folded, input), float64Chain ? Float64Tolerance : Float32Tolerance);
        Assert.False(folded.training);
        Assert.Null(folded.parameters().Concat(folded.buffers()).FirstOrDefault(tensor => tensor.dtype != dtype));
        // The chain is not modified by folding.
        Assert.All(chain.Unfolded.state_dict(), entry => Assert.True(entry.Value.equal(before[entry.Key]).all().item<bool>(), entry.Key));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_convolution_and_its_BatchNorm_fold_into_one_convolution_by_the_formula(bool convHasBias)
    {
        var chain = TrainedChain.Train(Conv(8, 32, 3, padding: 1, float64, bias: convHasBias, groups: 2), nn.BatchNorm2d(32, eps: 1e-3, dtype: float64), null, seed: 3);
        var bn = (BatchNorm2d)chain.Norm!;

        using var folded = InferenceFolding.BatchNorm(chain.Conv, bn);

        var scale = bn.weight.detach() / (bn.running_var! + 1e-3).sqrt();
        var convBias = convHasBias ? chain.Conv.bias!.detach() : zeros(32, dtype: float64);
        Assert.True(folded.weight.allclose(chain.Conv.weight.detach() * scale.view(32, 1, 1, 1), rtol: 1e-14, atol: 0));
        Assert.True(folded.bias!.allclose(bn.bias!.detach() + (convBias - bn.running_mean!) * scale, rtol: 1e-14, atol: 1e-15));
        Assert.Equal(2, folded.groups);
        var input = chain.Input(new Generator(8));
        AssertClose(chain.Evaluate(input), Evaluate(folded, input), Float64Tolerance);
    }

    [Theory]
    [InlineData(32, 1, 16, 1)]   // ungrouped: groups unchanged
    [InlineData(32, 2, 16, 2)]   // 16 outputs per conv group, BD groups inside them
    [InlineData(32, 4, 16, 2)]   // 8 outputs per conv group, a BD group spans two
    [InlineData(32, 32, 16, 2)]  // depthwise: d = 16 channels per folded group
    [InlineData(16, 16, 16, 1)]  // depthwise, one BD group: dense
    [InlineData(48, 6, 16, 3)]   // 8 per conv group, d = 16: lcm 16
    [InlineData(36, 4, 4, 1)]    // 9 per conv group, d = 4: lcm 36
    public void Decorrelation_after_a_grouped_convolution_gives_the_coarsest_common_grouping(long channels, long convGroups, int groupSize, long expected)
    {
        Assert.Equal(expected, InferenceFolding.DecorrelatedGroups(channels, convGroups, groupSize));
    }

    [Fact]
    public void Folding_BD_into_a_depthwise_convolution_produces_the_documented_grouping()
    {
        var chain = TrainedChain.Train(Conv(32, 32, 3, padding: 1, float64, groups: 32), nn.BatchNorm2d(32, dtype: float64),
            new BatchDecorrelation(32, dtype: float64), seed: 4);

        using var folded = InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);

        Assert.Equal(2, folded.Conv.groups);
        Assert.Equal(new long[] { 32, 16, 3, 3 }, folded.Conv.weight.shape);
        Assert.Null(folded.Block);
        var input = chain.Input(new Generator(9));
        AssertClose(chain.Evaluate(input), Evaluate(folded, input), Float64Tolerance);
    }

    [Fact]
    public void The_parts_of_a_folded_chain_are_the_documented_kinds()
    {
        var bd = Trained("conv-BN-BD");
        using var bdChain = InferenceFolding.Chain(bd.Conv, bd.Norm, bd.Block);
        var ceChain = Trained("conv-BN-CE");
        using var foldedCe = InferenceFolding.Chain(ceChain.Conv, ceChain.Norm, ceChain.Block);
        var gnBd = Trained("conv-GN-BD (kept norm, BD as 1x1 map)");
        using var foldedGnBd = InferenceFolding.Chain(gnBd.Conv, gnBd.Norm, gnBd.Block);

        Assert.Null(bdChain.Norm);
        Assert.Null(bdChain.Block);
        Assert.NotNull(bdChain.Conv.bias);
        Assert.Null(foldedCe.Norm);
        Assert.IsType<FoldedChannelEquilibrium>(foldedCe.Block);
        Assert.IsType<GroupNorm>(foldedGnBd.Norm);
        Assert.NotSame(gnBd.Norm, foldedGnBd.Norm);
        var map = Assert.IsType<Conv2d>(foldedGnBd.Block);
        Assert.Equal(2, map.groups);
        Assert.Equal(new long[] { 32, 16, 1, 1 }, map.weight.shape);
    }

    [Fact]
    public void A_BatchNorm_loaded_with_statistics_but_a_zero_counter_folds()
    {
        var chain = TrainedChain.Train(Conv(8, 16, 3, padding: 1, float64), nn.BatchNorm2d(16, dtype: float64), null, seed: 5);
        var bn = (BatchNorm2d)chain.Norm!;
        using (no_grad())
            bn.num_batches_tracked!.zero_();

        using var folded = InferenceFolding.Chain(chain.Conv, bn);

        var input = chain.Input(new Generator(10));
        AssertClose(chain.Evaluate(input), Evaluate(folded, input), Float64Tolerance);
    }

    [Fact]
    public void The_folded_modules_follow_to_float64()
    {
        var chain = Trained("conv-BN-CE");
        using var folded = InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);
        chain.Unfolded.to(float64);
        folded.to(float64);

        var input = chain.Input(new Generator(11)).to(float64);

        AssertClose(chain.Evaluate(input), Evaluate(folded, input), 1e-6);
    }

    internal static Conv2d Conv(long inChannels, long outChannels, long kernel, long padding, ScalarType dtype, bool bias = false, long groups = 1) =>
        nn.Conv2d(inChannels, outChannels, kernel, padding: padding, groups: groups, bias: bias, dtype: dtype);

    internal static TrainedChain Trained(string chainName, ScalarType? dtype = null)
    {
        var (conv, norm, block) = Chains[chainName](dtype ?? float32);
        return TrainedChain.Train(conv, norm, block, seed: chainName.Length);
    }

    internal static Tensor Evaluate(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        using var noGrad = no_grad();
        return module.call(input);
    }

    internal static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().to(float64).item<double>();
        double error = (actual.to(float64) - expected.to(float64)).abs().max().item<double>();
        Assert.True(scale > 0, "the unfolded output is all zeros");
        Assert.True(error <= tolerance * scale,
            $"max |folded - unfolded| = {error:g3} is {error / scale:g3} of max |unfolded| = {scale:g3}; tolerance {tolerance:g1}");
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.detach().clone());
}
