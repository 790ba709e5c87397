using CeDsl.Analysis;
using CeDsl.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Training.Tests.Analysis;

public class ProbePointsTests
{
    [Fact]
    public void Discovery_follows_registration_order_depth_first()
    {
        using var model = Sequential(
            ("conv1", Conv2d(3, 16, 3)),
            ("bn1", BatchNorm2d(16)),
            ("ce1", new ChannelEquilibrium(16)),
            ("relu", ReLU()),
            ("stage", Sequential(
                ("0", Conv2d(16, 16, 3)),
                ("1", BatchNorm2d(16)),
                ("2", new BatchDecorrelation(16)),
                ("3", ReLU6()))),
            ("head", Sequential(
                ("conv", Conv2d(16, 8, 1)),
                ("bn", BatchNorm2d(8)),
                ("se", new SqueezeExcitation(8, reduction: 4)),
                ("act", ReLU()))),
            ("bn_last", BatchNorm2d(8)),
            ("relu_last", ReLU()));

        var probes = ProbePoints.Discover(model);

        Assert.Equal(
        [
            new ProbePoint("bn1", "ce1", Rectifier.ReLU, "relu"),
            new ProbePoint("stage.1", "stage.2", Rectifier.ReLU6, "stage.3"),
            new ProbePoint("head.bn", null, Rectifier.None, null),
            new ProbePoint("bn_last", null, Rectifier.ReLU, "relu_last"),
        ], probes);
    }

    [Fact]
    public void Discovery_pairs_a_bn_with_a_relu_across_container_boundaries()
    {
        // TorchSharp's named_modules lists features, relu, features.conv, features.bn: relu before bn.
        using var model = Sequential(
            ("features", Sequential(("conv", Conv2d(1, 4, 3)), ("bn", BatchNorm2d(4)))),
            ("relu", ReLU()));
        Assert.Equal(["features", "relu", "features.conv", "features.bn"], model.named_modules().Select(m => m.name));

        Assert.Equal([new ProbePoint("features.bn", null, Rectifier.ReLU, "relu")], ProbePoints.Discover(model));
    }

    [Fact]
    public void Discovery_in_a_block_that_shares_one_relu_pairs_only_the_bn_registered_before_it()
    {
        using var model = Sequential(("block", new SharedReluBlock(4)));

        var probes = ProbePoints.Discover(model);

        Assert.Equal(
        [
            new ProbePoint("block.bn1", null, Rectifier.ReLU, "block.relu"),
            new ProbePoint("block.bn2", null, Rectifier.None, null),
        ], probes);
        // The pairing holds at run time: sparsity is computed from bn1's output, so the shared ReLU is no obstacle.
        var report = ChannelStatistics.Measure(model, probes, [randn([2, 4, 5, 5], generator: new Generator(1))]);
        Assert.NotNull(report.Layers[0].SparsityRatio);
    }

    [Fact]
    public void Pre_activation_is_the_equilibrium_module_if_any()
    {
        Assert.Equal("ce", new ProbePoint("bn", "ce").PreActivation);
        Assert.Equal("bn", new ProbePoint("bn").PreActivation);
    }
}
