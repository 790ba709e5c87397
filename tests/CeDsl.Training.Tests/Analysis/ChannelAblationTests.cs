using CeDsl.Analysis;
using CeDsl.Data;
using CeDsl.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Training.Tests.Analysis;

public sealed class ChannelAblationTests : IDisposable
{
    private readonly Sequential _model = AnalysisNetworks.Classifier(seed: 11);
    private readonly ImageDataset _data;
    private readonly BatchLoader _loader;

    public ChannelAblationTests()
    {
        _data = AnalysisNetworks.LabelledBy(_model, count: 96, seed: 12, AnalysisNetworks.Normalization);
        _loader = AnalysisNetworks.Loader(_data, AnalysisNetworks.Normalization, batchSize: 32);
    }

    public void Dispose()
    {
        _loader.Dispose();
        _data.Dispose();
        _model.Dispose();
    }

    private static readonly ProbePoint[] Targets = [new("bn1", null, Rectifier.ReLU, "relu1"), new("bn2", null, Rectifier.ReLU, "relu2")];

    [Fact]
    public void Ratio_zero_is_the_unablated_accuracy_and_the_curve_falls_as_channels_go()
    {
        double plain = Evaluator.Evaluate(_model, _loader).Accuracy;

        var curve = ChannelAblation.Run(_model, Targets, _loader, new ChannelAblationOptions { Ratios = [0, 0.5, 1], Repeats = 3, Seed = 5 });

        Assert.Equal(["bn1", "bn2"], curve.Targets);
        Assert.Equal((16, 96, AblationSite.NormalizationOutput, 5UL), (curve.TotalChannels, curve.Images, curve.Site, curve.Seed));
        Assert.Equal([0, 8, 16], curve.Points.Select(p => p.AblatedChannels));
        Assert.Equal([plain, plain, plain], curve.Points[0].Accuracies);
        Assert.Equal(0, curve.Points[0].StandardDeviation);
        Assert.True(plain > 0.9, $"labels are the network's own predictions, accuracy {plain}");
        Assert.True(curve.Points[1].Mean < plain, "zeroing half the channels must cost accuracy on this network");
    }

    [Fact]
    public void Ratio_one_equals_the_network_whose_bn_outputs_are_zero()
    {
        using var zeroed = AnalysisNetworks.Classifier(seed: 11);
        foreach (var norm in new[] { (BatchNorm2d)zeroed[1], (BatchNorm2d)zeroed[4] })
            AnalysisNetworks.SetAffine(norm, new float[8], new float[8]);
        var input = randn([5, 1, 8, 8], generator: new Generator(2));
        _model.eval();
        zeroed.eval();

        Tensor ablatedOutput;
        using (ChannelAblation.ZeroChannels(_model, Targets, [Enumerable.Range(0, 8).ToArray(), Enumerable.Range(0, 8).ToArray()]))
            ablatedOutput = _model.call(input);
        var curve = ChannelAblation.Run(_model, Targets, _loader, new ChannelAblationOptions { Ratios = [1], Repeats = 2 });

        Assert.True(AnalysisNetworks.SameValues(zeroed.call(input), ablatedOutput));
        Assert.Equal(Evaluator.Evaluate(zeroed, _loader).Accuracy, curve.Points[0].Mean);
        Assert.NotEqual(Evaluator.Evaluate(_model, _loader).Accuracy, curve.Points[0].Mean);
    }

    [Fact]
    public void Zeroing_at_the_normalization_output_happens_before_the_equilibrium_module()
    {
        // A 1x1 conv mixing the channels stands in for CE: the two sites then differ.
        using var model = Sequential(("bn", BatchNorm2d(3)), ("mix", Conv2d(3, 3, 1)), ("relu", ReLU()));
        AnalysisNetworks.Randomize(model, 3);
        model.eval();
        var bn = (BatchNorm2d)model[0];
        var mix = (Conv2d)model[1];
        var input = randn([2, 3, 4, 4], generator: new Generator(4));
        ProbePoint[] target = [new("bn", "mix", Rectifier.ReLU, "relu")];
        IReadOnlyList<int>[] channels = [[1]];
        using var noGrad = no_grad();
        var keep = tensor(new float[] { 1, 0, 1 }).view(1, 3, 1, 1);

        Tensor atNormalization, atPreActivation;
        using (ChannelAblation.ZeroChannels(model, target, channels, AblationSite.NormalizationOutput))
            atNormalization = model.call(input);
        using (ChannelAblation.ZeroChannels(model, target, channels, AblationSite.PreActivation))
            atPreActivation = model.call(input);

        Assert.True(AnalysisNetworks.SameValues(functional.relu(mix.call(bn.call(input) * keep)), atNormalization));
        Assert.True(AnalysisNetworks.SameValues(functional.relu(mix.call(bn.call(input)) * keep), atPreActivation));
        Assert.False(AnalysisNetworks.SameValues(atNormalization, atPreActivation));
    }

    [Fact]
    public void The_network_is_exactly_as_before_after_the_analysis()
    {
        _model.train();
        var input = randn([6, 1, 8, 8], generator: new Generator(7));
        var state = AnalysisNetworks.Snapshot(_model);
        _model.eval();
        var before = _model.call(input).detach().clone();
        _model.train();

        ChannelAblation.Run(_model, Targets, _loader, new ChannelAblationOptions { Ratios = [0, 0.25, 0.75, 1], Repeats = 2 });

        Assert.True(_model.training);
        Assert.Equal(state, AnalysisNetworks.Snapshot(_model));
        _model.eval();
        Assert.True(AnalysisNetworks.SameValues(before, _model.call(input)));
    }

    [Fact]
    public void A_cancelled_run_also_leaves_the_network_as_it_was()
    {
        _model.eval();
        var input = randn([6, 1, 8, 8], generator: new Generator(8));
        var before = _model.call(input).detach().clone();
        using var cancel = new CancellationTokenSource();
        var progress = new Progress(report => { if (report.RatioIndex == 1) cancel.Cancel(); });

        Assert.ThrowsAny<OperationCanceledException>(() => ChannelAblation.Run(_model, Targets, _loader,
            new ChannelAblationOptions { Ratios = [0.5, 0.75, 1], Repeats = 2 }, progress, cancel.Token));

        Assert.True(AnalysisNetworks.SameValues(before, _model.call(input)));
    }

    [Fact]
    public void The_same_seed_gives_the_same_curve_and_another_seed_other_channels()
    {
        var options = new ChannelAblationOptions { Ratios = [0.25, 0.5], Repeats = 3, Seed = 42 };

        var first = ChannelAblation.Run(_model, Targets, _loader, options);
        var second = ChannelAblation.Run(_model, Targets, _loader, options);
        var other = ChannelAblation.Run(_model, Targets, _loader, options with { Seed = 43 });

        Assert.Equal(first.Points.SelectMany(p => p.Accuracies), second.Points.SelectMany(p => p.Accuracies));
        Assert.NotEqual(first.Points.SelectMany(p => p.Accuracies), other.Points.SelectMany(p => p.Accuracies));
        Assert.NotEqual(ChannelAblation.RandomChannels(64, 0.5, 42, 0, 0), ChannelAblation.RandomChannels(64, 0.5, 43, 0, 0));
        Assert.NotEqual(ChannelAblation.RandomChannels(64, 0.5, 42, 0, 0), ChannelAblation.RandomChannels(64, 0.5, 42, 1, 0));
        Assert.NotEqual(ChannelAblation.RandomChannels(64, 0.5, 42, 0, 0), ChannelAblation.RandomChannels(64, 0.5, 42, 0, 1));
    }

    [Fact]
    public void Ablation_is_cumulative_larger_ratios_zero_supersets()
    {
        IReadOnlyList<int>? previous = null;
        foreach (double ratio in new[] { 0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1 })
        {
            var channels = ChannelAblation.RandomChannels(30, ratio, seed: 9, repeat: 2, target: 1);
            Assert.Equal((int)Math.Round(ratio * 30), channels.Count);
            Assert.Equal(channels.Count, channels.Distinct().Count());
            Assert.All(channels, c => Assert.InRange(c, 0, 29));
            if (previous is not null)
                Assert.Equal(previous, channels.Take(previous.Count));
            previous = channels;
        }
        // Halves round up: 0.5 of 5 channels is 3.
        Assert.Equal(3, ChannelAblation.RandomChannels(5, 0.5, 0, 0, 0).Count);
    }

    [Fact]
    public void The_standard_deviation_is_the_sample_one()
    {
        var point = new AblationPoint(0.3, 3, [0.5, 0.7, 0.9]);

        Assert.Equal(0.7, point.Mean, 15);
        Assert.Equal(0.2, point.StandardDeviation, 15);
    }

    [Theory]
    [InlineData(-0.1, 1)]
    [InlineData(1.5, 1)]
    [InlineData(double.NaN, 1)]
    [InlineData(0.5, 0)]
    public void Bad_options_are_clear_errors(double ratio, int repeats)
    {
        Assert.Throws<ArgumentException>(() => ChannelAblation.Run(_model, Targets, _loader,
            new ChannelAblationOptions { Ratios = [0, ratio], Repeats = repeats }));
    }

    [Fact]
    public void Channel_indices_outside_the_layer_are_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => ChannelAblation.ZeroChannels(_model, [Targets[0]], [[8]]));

        Assert.Contains("'bn1': channel 8 is outside 0..7", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ablating_at_a_module_used_twice_is_refused_and_leaves_the_network_as_it_was()
    {
        using var model = Sequential(("block", new SharedReluBlock(1)), ("pool", AdaptiveAvgPool2d(1)), ("flatten", Flatten()), ("fc", Linear(1, 4)));
        AnalysisNetworks.Randomize(model, 6);
        model.eval();
        var input = randn([3, 1, 8, 8], generator: new Generator(9));
        var before = model.call(input).detach().clone();

        var error = Assert.Throws<InvalidOperationException>(() => ChannelAblation.Run(model, [new ProbePoint("block.bn1", "block.relu")], _loader,
            new ChannelAblationOptions { Ratios = [1], Repeats = 1, Site = AblationSite.PreActivation }));

        Assert.Contains("'block.relu' ran 6 times for 3 batches", error.Message, StringComparison.Ordinal);
        Assert.True(AnalysisNetworks.SameValues(before, model.call(input)));
    }

    private sealed class Progress(Action<(int RatioIndex, int Repeat, double Accuracy)> report) : IProgress<(int RatioIndex, int Repeat, double Accuracy)>
    {
        public void Report((int RatioIndex, int Repeat, double Accuracy) value) => report(value);
    }
}
