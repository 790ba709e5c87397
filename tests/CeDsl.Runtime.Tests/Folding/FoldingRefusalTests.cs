using CeDsl.Folding;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Folding;

public class FoldingRefusalTests
{
    private static readonly ChainNames Names = new("layer1.0.conv3", "layer1.0.bn3", "layer1.0.ce");

    private static TrainedChain TrainedCe() => FoldingEquivalenceTests.Trained("conv-BN-CE");

    private static void SetState(nn.Module module, string key, double value)
    {
        using var noGrad = no_grad();
        module.state_dict()[key].fill_(value);
    }

    [Theory]
    [InlineData("conv", "layer1.0.conv3 (Conv2d)")]
    [InlineData("norm", "layer1.0.bn3 (BatchNorm2d)")]
    [InlineData("block", "layer1.0.ce (ChannelEquilibrium)")]
    public void A_module_in_training_mode_is_refused_by_name(string which, string expectedName)
    {
        var chain = TrainedCe();
        var module = which switch { "conv" => (nn.Module)chain.Conv, "norm" => chain.Norm!, _ => chain.Block! };
        module.train();

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block, Names));

        Assert.Contains(expectedName, error.Message);
        Assert.Contains("training mode", error.Message);
    }

    [Fact]
    public void A_submodule_in_training_mode_is_refused_with_its_path()
    {
        var chain = TrainedCe();
        var gate = chain.Block!.named_modules().Single(entry => entry.name == "AR").module;
        gate.train();

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block, Names));

        Assert.Contains("layer1.0.ce (ChannelEquilibrium)", error.Message);
        Assert.Contains("'AR'", error.Message);
        Assert.Throws<InvalidOperationException>(() => InferenceFolding.ChannelEquilibrium((ChannelEquilibrium)chain.Block!));
    }

    [Fact]
    public void A_BatchNorm_that_never_ran_a_training_step_is_refused()
    {
        using var conv = FoldingEquivalenceTests.Conv(8, 16, 3, padding: 1, float32);
        using var bn = nn.BatchNorm2d(16);
        conv.eval();
        bn.eval();

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(conv, bn, null, Names));
        Assert.Contains("layer1.0.bn3 (BatchNorm2d)", error.Message);
        Assert.Contains("never estimated", error.Message);
        Assert.Throws<InvalidOperationException>(() => InferenceFolding.BatchNorm(conv, bn));
    }

    [Fact]
    public void A_BatchNorm_without_running_statistics_is_refused()
    {
        using var conv = FoldingEquivalenceTests.Conv(8, 16, 3, padding: 1, float32);
        using var bn = nn.BatchNorm2d(16, track_running_stats: false);
        conv.eval();
        bn.eval();

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(conv, bn, null, Names));
        Assert.Contains("layer1.0.bn3 (BatchNorm2d)", error.Message);
        Assert.Contains("track_running_stats = false", error.Message);
    }

    [Theory]
    [InlineData("CE", "AR.running_scale", 0.0, "never estimated")]
    [InlineData("CE", "AR.running_scale", -1.0, "positive and finite")]
    [InlineData("CE", "AR.running_scale", double.PositiveInfinity, "positive and finite")]
    [InlineData("AII", "running_scale", 0.0, "never estimated")]
    [InlineData("AII", "running_scale", double.NaN, "positive and finite")]
    public void A_block_whose_running_scale_cannot_divide_is_refused(string kind, string key, double value, string expected)
    {
        var chain = FoldingEquivalenceTests.Trained(kind == "CE" ? "conv-BN-CE" : "conv-BN-AII");
        SetState(chain.Block!, key, value);

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block, Names));

        Assert.Contains(kind == "CE" ? "layer1.0.ce (ChannelEquilibrium)" : "layer1.0.ce (AdaptiveInstanceInverse)", error.Message);
        Assert.Contains(key, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_decorrelation_block_that_never_ran_a_training_step_is_refused(bool afterKeptNorm)
    {
        var chain = FoldingEquivalenceTests.Trained(afterKeptNorm ? "conv-GN-BD (kept norm, BD as 1x1 map)" : "conv-BN-BD");
        var bd = (BatchDecorrelation)chain.Block!;
        SetState(bd, "running_mean", 0);
        using (no_grad())
            bd.state_dict()["running_wm"].copy_(eye(16).repeat(2, 1, 1));

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block, Names));

        Assert.Contains("layer1.0.ce (BatchDecorrelation)", error.Message);
        Assert.Contains("never estimated", error.Message);
    }

    [Fact]
    public void Decorrelation_statistics_are_estimated_once_either_one_moved()
    {
        var chain = FoldingEquivalenceTests.Trained("conv-BN-BD", float64);
        SetState(chain.Block!, "running_mean", 0);

        using var folded = InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block);

        var input = chain.Input(new Generator(3));
        FoldingEquivalenceTests.AssertClose(chain.Evaluate(input), FoldingEquivalenceTests.Evaluate(folded, input), 1e-10);
    }

    [Theory]
    [InlineData("running_var", double.NaN)]
    [InlineData("running_mean", double.PositiveInfinity)]
    [InlineData("weight", double.NaN)]
    public void Non_finite_BatchNorm_state_is_refused(string key, double value)
    {
        var chain = FoldingEquivalenceTests.Trained("conv-BN");
        using (no_grad())
            chain.Norm!.state_dict()[key][3] = value;

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block, Names));

        Assert.Contains("layer1.0.bn3 (BatchNorm2d)", error.Message);
        Assert.Contains("not finite", error.Message);
    }

    [Fact]
    public void Non_finite_decorrelation_statistics_are_refused()
    {
        var chain = FoldingEquivalenceTests.Trained("conv-BN-CE");
        using (no_grad())
            chain.Block!.state_dict()["running_wm"][1, 2, 3] = double.NaN;

        var error = Assert.Throws<InvalidOperationException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block, Names));

        Assert.Contains("layer1.0.ce (ChannelEquilibrium)", error.Message);
        Assert.Contains("'weight' is not finite", error.Message);
    }

    [Fact]
    public void Unsupported_norms_and_blocks_are_refused_by_kind()
    {
        var chain = TrainedCe();
        using var dropout = nn.Dropout2d();
        using var relu = nn.ReLU();
        dropout.eval();
        relu.eval();

        var normError = Assert.Throws<ArgumentException>(() => InferenceFolding.Chain(chain.Conv, dropout, chain.Block, Names));
        var blockError = Assert.Throws<ArgumentException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, relu, Names));

        Assert.Contains("layer1.0.bn3 (Dropout2d)", normError.Message);
        Assert.Contains("layer1.0.ce (ReLU)", blockError.Message);
    }

    [Fact]
    public void Mismatched_channel_counts_are_refused()
    {
        var chain = TrainedCe();
        using var otherBn = nn.BatchNorm2d(16);
        using var otherCe = new ChannelEquilibrium(16);
        otherBn.eval();
        otherCe.eval();

        var normError = Assert.Throws<ArgumentException>(() => InferenceFolding.Chain(chain.Conv, otherBn, chain.Block, Names));
        var blockError = Assert.Throws<ArgumentException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, otherCe, Names));

        Assert.Contains("16 channels", normError.Message);
        Assert.Contains("layer1.0.conv3 has 32 outputs", normError.Message);
        Assert.Contains("layer1.0.ce (ChannelEquilibrium): it was built for 16 channels", blockError.Message);
    }

    [Fact]
    public void Mismatched_element_types_are_refused()
    {
        var chain = TrainedCe();
        chain.Block!.to(float64);

        var error = Assert.Throws<ArgumentException>(() => InferenceFolding.Chain(chain.Conv, chain.Norm, chain.Block, Names));

        Assert.Contains("layer1.0.ce (ChannelEquilibrium)", error.Message);
        Assert.Contains("Float64", error.Message);
        Assert.Contains("Float32", error.Message);
    }
}
