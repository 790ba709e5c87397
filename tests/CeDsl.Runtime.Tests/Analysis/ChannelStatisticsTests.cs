using CeDsl.Analysis;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.Analysis;

public class ChannelStatisticsTests
{
    [Fact]
    public void Gamma_and_beta_ratios_count_the_channels_exactly()
    {
        using var model = AnalysisNetworks.Classifier(seed: 1, width: 4);
        var bn1 = (BatchNorm2d)model[1];
        var bn2 = (BatchNorm2d)model[4];
        // gamma < 0.1: 0.05, -0.5, 0.0999 (3); |gamma| < 0.1: 0.05, 0.0999 (2); beta <= 0: 0, -1 (2);
        // Remark 1 (|gamma| < 0.1 and beta <= 0): channel 0 only.
        AnalysisNetworks.SetAffine(bn1, [0.05f, -0.5f, 0.2f, 0.0999f], [0f, -1f, 0.3f, 0.5f]);
        // gamma < 0.1: -0.01, 0 (2) = |gamma| < 0.1; beta <= 0: -0.2, -3 (2); Remark 1: channels 1 and 2.
        AnalysisNetworks.SetAffine(bn2, [1f, -0.01f, 0f, 3f], [0.1f, -0.2f, -3f, 2f]);

        var report = ChannelStatistics.Parameters(model, ProbePoints.Discover(model));

        Assert.Equal(["bn1", "bn2"], report.Layers.Select(l => l.Normalization));
        var first = report.Layers[0];
        Assert.Equal((4, 3, 2, 2, 1), (first.Channels, first.GammaBelow, first.AbsGammaBelow, first.BetaNonPositive, first.Inhibited));
        Assert.Equal((0.75, 0.5, 0.5, 0.25), (first.GammaBelowRatio, first.AbsGammaBelowRatio, first.BetaNonPositiveRatio, first.InhibitedRatio));
        var second = report.Layers[1];
        Assert.Equal((4, 2, 2, 2, 2), (second.Channels, second.GammaBelow, second.AbsGammaBelow, second.BetaNonPositive, second.Inhibited));
        Assert.Null(first.SparsityRatio);
        Assert.Null(first.DeadChannelRatio);

        // Network-wide: pooled over the 8 channels.
        Assert.Equal(8, report.Channels);
        Assert.Equal(5 / 8.0, report.GammaBelowRatio);
        Assert.Equal(4 / 8.0, report.AbsGammaBelowRatio);
        Assert.Equal(4 / 8.0, report.BetaNonPositiveRatio);
        Assert.Equal(3 / 8.0, report.InhibitedRatio);
        Assert.Null(report.SparsityRatio);
        Assert.Equal(0, report.Images);
    }

    [Fact]
    public void The_gamma_threshold_is_an_option()
    {
        using var model = AnalysisNetworks.Classifier(seed: 1, width: 4);
        AnalysisNetworks.SetAffine((BatchNorm2d)model[1], [0.0005f, 0.002f, -0.0001f, 1f], [0f, 0f, 0f, 0f]);

        var report = ChannelStatistics.Parameters(model, [new ProbePoint("bn1")], new ChannelStatisticsOptions { GammaThreshold = 1e-3 });

        Assert.Equal(2, report.Layers[0].GammaBelow);
        Assert.Equal(2, report.Layers[0].AbsGammaBelow);
    }

    [Fact]
    public void The_papers_gamma_criterion_counts_magnitudes_below_1e_3_whatever_the_slides_threshold()
    {
        using var model = AnalysisNetworks.Classifier(seed: 1, width: 4);
        // |gamma| < 1e-3: 5e-4 and -9e-4 (1e-3 itself and -2e-3 are not); bn2: 0 and -1e-4.
        AnalysisNetworks.SetAffine((BatchNorm2d)model[1], [5e-4f, -9e-4f, 1e-3f, -2e-3f], [1f, 1f, 1f, 1f]);
        AnalysisNetworks.SetAffine((BatchNorm2d)model[4], [0f, 1f, -1e-4f, 0.5f], [1f, 1f, 1f, 1f]);

        var report = ChannelStatistics.Parameters(model, ProbePoints.Discover(model), new ChannelStatisticsOptions { GammaThreshold = 0.7 });

        Assert.Equal([2, 2], report.Layers.Select(l => l.ZeroGamma));
        Assert.Equal([0.5, 0.5], report.Layers.Select(l => l.ZeroGammaRatio));
        Assert.Equal(4 / 8.0, report.ZeroGammaRatio);
        Assert.Equal([4, 3], report.Layers.Select(l => l.GammaBelow));
        Assert.Equal(1e-3, new ChannelStatisticsOptions().ZeroGammaThreshold);
    }

    [Fact]
    public void Before_rectifier_keeps_the_norm_rectifier_blocks_only()
    {
        using var model = Sequential(("bn1", PassThrough(2)), ("relu1", ReLU()), ("bn2", PassThrough(2)), ("conv", Conv2d(2, 2, 1)),
            ("bn3", PassThrough(2)), ("relu3", ReLU()));
        AnalysisNetworks.SetAffine((BatchNorm2d)model[0], [0f, 1f], [-1f, 0f]);
        AnalysisNetworks.SetAffine((BatchNorm2d)model[2], [0f, 0f], [-1f, -1f]);
        AnalysisNetworks.SetAffine((BatchNorm2d)model[4], [1f, 1f], [0f, 0f]);

        var report = ChannelStatistics.Parameters(model, ProbePoints.Discover(model));
        var rectified = report.BeforeRectifier();

        Assert.Equal(["bn1", "bn3"], rectified.Layers.Select(l => l.Normalization));
        Assert.Equal((3 / 6.0, 1 / 4.0), (report.ZeroGammaRatio, rectified.ZeroGammaRatio));
        Assert.Equal((3 / 6.0, 1 / 4.0), (report.InhibitedRatio, rectified.InhibitedRatio));
        Assert.Equal((report.Model, report.Options, report.Images), (rectified.Model, rectified.Options, rectified.Images));
    }

    [Fact]
    public void A_collapsed_channel_is_found_by_both_criteria_of_the_paper()
    {
        // eps 0, mean 0, var 1: the BN computes gamma x + beta exactly. Channel 0 (gamma 0, beta -1) is
        // collapsed: every output is 0. Channel 1 (gamma 0, beta 0.5) has a zero gamma but outputs 0.5.
        // Channel 2 (gamma 1, beta 0) passes its input; channel 3 (gamma -1) inverts an all-negative input.
        using var model = Sequential(("bn", PassThrough(4)), ("relu", ReLU()));
        AnalysisNetworks.SetAffine((BatchNorm2d)model[0], [0f, 0f, 1f, -1f], [-1f, 0.5f, 0f, 0f]);
        Tensor[] inputs =
        [
            tensor(new float[] { 3, -2, 1, 5, 7, 8, -9, 1, -1, 2, 3, -4, -1, -2, -3, -4 }, [1, 4, 2, 2]),
            tensor(new float[] { -3, 2, 1, 0, 0, 0, 0, 0, 0.5f, -0.5f, 7, 1, -5, -6, -7, -8 }, [1, 4, 2, 2]),
        ];

        var report = ChannelStatistics.Measure(model, ProbePoints.Discover(model), inputs);

        var layer = Assert.Single(report.Layers);
        // |gamma| < 1e-3: channels 0 and 1. Post-ReLU values below 1e-3: all 8 of channel 0, none of
        // channel 1, the 3 negative inputs of channel 2 (-1, -4, -0.5), none of channel 3: 11 of 32.
        Assert.Equal((2, 0.5), (layer.ZeroGamma, layer.ZeroGammaRatio));
        Assert.Equal((32L, 11L), (layer.ActivationValues!.Value, layer.SparseValues!.Value));
        Assert.Equal(11 / 32.0, report.BeforeRectifier().SparsityRatio);
        Assert.Equal(1, layer.DeadChannels);
        // The slides' ratios: gamma < 0.1 for channels 0, 1 and 3 (signed); Remark 1 (|gamma| < 0.1, beta <= 0): channel 0.
        Assert.Equal((3, 1), (layer.GammaBelow, layer.Inhibited));
    }

    /// <summary>A BN with eps 0, mean 0, var 1, gamma 1, beta 0 in evaluation mode passes its input through exactly.</summary>
    private static BatchNorm2d PassThrough(long channels)
    {
        var bn = BatchNorm2d(channels, eps: 0);
        AnalysisNetworks.SetAffine(bn, [.. Enumerable.Repeat(1f, (int)channels)], new float[channels]);
        return bn;
    }

    /// <summary>
    /// Two batches of [1, 2, 2, 2]; channel 0: -1, 0, 0.0005, 0.002 | 5, 0.0009, 0.001, -7 (post-ReLU below 1e-3: 5 of 8);
    /// channel 1: 0.5, 2, 3, -3 | 0, 0.3, -1, -2 (4 of 8). Channel 2 is always below 1e-3 (dead).
    /// </summary>
    private static Tensor[] KnownInputs() =>
    [
        tensor(new float[] { -1, 0, 0.0005f, 0.002f, 0.5f, 2, 3, -3, 0, -5, 0.0001f, 0 }, [1, 3, 2, 2]),
        tensor(new float[] { 5, 0.0009f, 0.001f, -7, 0, 0.3f, -1, -2, -1, -1, 0.00099f, -2 }, [1, 3, 2, 2]),
    ];

    [Fact]
    public void Sparsity_is_the_fraction_of_post_relu_values_below_the_threshold()
    {
        using var model = Sequential(("bn", PassThrough(3)), ("relu", ReLU()));

        var report = ChannelStatistics.Measure(model, ProbePoints.Discover(model), KnownInputs());

        var layer = Assert.Single(report.Layers);
        Assert.Equal(("bn", "relu", Rectifier.ReLU), (layer.Normalization, layer.Activation, layer.Rectifier));
        // 5 (channel 0) + 4 (channel 1) + 8 (channel 2) of 24; 0.001 itself is not below 1e-3.
        Assert.Equal(24, layer.ActivationValues);
        Assert.Equal(17, layer.SparseValues);
        Assert.Equal(17 / 24.0, layer.SparsityRatio);
        Assert.Equal(1, layer.DeadChannels);
        Assert.Equal(1 / 3.0, layer.DeadChannelRatio);
        Assert.Equal(2, report.Images);
    }

    [Fact]
    public void Sparsity_of_a_functional_relu_matches_that_of_a_relu_module()
    {
        using var functionalNet = new FunctionalReluNet(3);
        AnalysisNetworks.SetAffine(functionalNet.Norm, [1f, 1f, 1f], [0f, 0f, 0f]);

        var report = ChannelStatistics.Measure(functionalNet, [new ProbePoint("bn", Rectifier: Rectifier.ReLU)], KnownInputs());

        Assert.Equal(17, report.Layers[0].SparseValues);
        Assert.Equal(24, report.Layers[0].ActivationValues);
    }

    [Fact]
    public void Sparsity_is_measured_after_the_equilibrium_module()
    {
        // Doubling after BN lifts 0.0005 and 0.0009 (and 0.00099) above 1e-3: 14 of 24 remain below.
        using var model = Sequential(("bn", PassThrough(3)), ("eq", new Scale(2)), ("relu", ReLU6()));

        var report = ChannelStatistics.Measure(model, [new ProbePoint("bn", "eq", Rectifier.ReLU6, "relu")], KnownInputs());

        Assert.Equal(14, report.Layers[0].SparseValues);
        Assert.Equal(0, report.Layers[0].DeadChannels);
    }

    [Fact]
    public void Network_sparsity_is_the_mean_of_the_layer_ratios_and_the_pooled_ratio_is_kept_apart()
    {
        // bn1 sees 2x1x2x2 values, bn2 (after a 2x2 max pool) 2x1x1x1.
        using var model = Sequential(("bn1", PassThrough(1)), ("relu1", ReLU()), ("pool", MaxPool2d(2)), ("bn2", PassThrough(1)), ("relu2", ReLU()));
        Tensor[] inputs = [tensor(new float[] { -1, 2, 0, 0, -1, -1, -1, -1 }, [2, 1, 2, 2])];

        var report = ChannelStatistics.Measure(model, ProbePoints.Discover(model), inputs);

        // bn1: 7 of 8 below; bn2: maxima 2 and -1 -> 1 of 2 below.
        Assert.Equal([7 / 8.0, 1 / 2.0], report.Layers.Select(l => l.SparsityRatio!.Value));
        Assert.Equal((7 / 8.0 + 1 / 2.0) / 2, report.SparsityRatio);
        Assert.Equal(8 / 10.0, report.PooledSparsityRatio);
        Assert.Equal(0.0, report.DeadChannelRatio);
    }

    [Fact]
    public void Probe_points_without_a_rectifier_get_no_sparsity()
    {
        using var model = Sequential(("bn", PassThrough(3)), ("conv", Conv2d(3, 3, 1)));

        var report = ChannelStatistics.Measure(model, ProbePoints.Discover(model), KnownInputs());

        Assert.Equal(Rectifier.None, report.Layers[0].Rectifier);
        Assert.Null(report.Layers[0].SparsityRatio);
        Assert.Null(report.SparsityRatio);
    }

    [Fact]
    public void Measuring_leaves_the_network_as_it_was()
    {
        using var model = AnalysisNetworks.Classifier(seed: 3);
        model.train();
        var input = randn([4, 1, 8, 8], generator: new Generator(4));
        model.eval();
        var before = model.call(input).detach().clone();
        model.train();
        var state = AnalysisNetworks.Snapshot(model);

        ChannelStatistics.Measure(model, ProbePoints.Discover(model), [input, input]);

        Assert.True(model.training);
        Assert.Equal(state, AnalysisNetworks.Snapshot(model));
        model.eval();
        Assert.True(AnalysisNetworks.SameValues(model.call(input), before));
    }

    [Fact]
    public void A_module_used_twice_in_the_forward_pass_is_refused_by_name()
    {
        using var block = new SharedReluBlock(2);
        using var model = Sequential(("block", block));
        var input = randn([2, 2, 4, 4], generator: new Generator(5));

        var error = Assert.Throws<InvalidOperationException>(() =>
            ChannelStatistics.Measure(model, [new ProbePoint("block.bn1", Equilibrium: "block.relu")], [input]));

        Assert.Contains("'block.relu' ran 2 times", error.Message);
        // The hooks are gone: a plain forward pass works and gives the same result twice.
        Assert.True(AnalysisNetworks.SameValues(model.call(input), model.call(input)));
    }

    [Fact]
    public void A_module_off_the_forward_path_is_refused_by_name()
    {
        using var model = new UnusedNormNet(3);

        var error = Assert.Throws<InvalidOperationException>(() =>
            ChannelStatistics.Measure(model, [new ProbePoint("bn"), new ProbePoint("spare")], KnownInputs()));

        Assert.Contains("'spare' did not run", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_normalization_listed_twice_is_refused()
    {
        using var model = Sequential(("bn", PassThrough(3)), ("relu", ReLU()));

        var error = Assert.Throws<ArgumentException>(() =>
            ChannelStatistics.Measure(model, [new ProbePoint("bn"), new ProbePoint("bn")], KnownInputs()));

        Assert.Contains("'bn' is listed twice", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bn9", null, "no module named 'bn9'")]
    [InlineData("relu", null, "'relu' is a ReLU, not a BatchNorm2d")]
    [InlineData("bn", "nothing", "no module named 'nothing'")]
    public void Bad_probe_points_are_clear_errors(string normalization, string? equilibrium, string message)
    {
        using var model = Sequential(("bn", PassThrough(3)), ("relu", ReLU()));

        var error = Assert.Throws<ArgumentException>(() => ChannelStatistics.Parameters(model, [new ProbePoint(normalization, equilibrium)]));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bn_without_affine_parameters_is_a_clear_error()
    {
        using var model = Sequential(("bn", BatchNorm2d(3, affine: false)), ("relu", ReLU()));

        var error = Assert.Throws<ArgumentException>(() => ChannelStatistics.Parameters(model, ProbePoints.Discover(model)));

        Assert.Contains("'bn'", error.Message);
        Assert.Contains("no affine", error.Message);
    }
}
