using CeDsl.Selective;
using TorchSharp;
using Xunit.Abstractions;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

public class ChannelImportanceTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(0.5, 2.0)]
    [InlineData(-1.0, 0.3)]
    [InlineData(-2.0, 1.0)]
    [InlineData(1.5, -0.7)]
    [InlineData(0.2, 1e-3)]
    [InlineData(-0.05, 0.02)]
    public void Expected_activation_matches_a_Monte_Carlo_estimate_of_E_ReLU_N_b_g2(double b, double g)
    {
        const int samples = 1_000_000;
        using var scope = NewDisposeScope();
        var generator = new Generator(1234);
        var activations = (randn(samples, ScalarType.Float64, generator: generator) * Math.Abs(g) + b).relu();
        double mean = activations.mean().ToDouble();
        double standardError = activations.std().ToDouble() / Math.Sqrt(samples);

        double closedForm = ChannelImportance.ExpectedActivation(tensor(new[] { g }), tensor(new[] { b })).ToDouble();

        output.WriteLine($"b={b} g={g}: closed form {closedForm:G8}, Monte Carlo {mean:G8} +- {standardError:G3}");
        Assert.InRange(closedForm, mean - 5 * standardError - 1e-12, mean + 5 * standardError + 1e-12);
    }

    [Fact]
    public void Ecdm_is_the_kernel_sum_times_the_expected_activation_times_the_gate()
    {
        const int outputs = 5, inputs = 7, kernel = 3;
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        var g = randn(inputs, ScalarType.Float64, generator: generator);
        var b = randn(inputs, ScalarType.Float64, generator: generator);
        var w = randn(new long[] { outputs, inputs, kernel, kernel }, ScalarType.Float64, generator: generator);
        double[] gate = [1, 0, 1, 1, 0, 1, 1];

        var ecdm = ChannelImportance.Ecdm(g, b, w, gate: tensor(gate));
        var normalized = ChannelImportance.Normalize(ecdm);

        double[,] expected = EcdmByLoops(Values(g), Values(b), Values(w), outputs, inputs, kernel * kernel, gate);
        double[,] expectedNormalized = NormalizeByLoops(expected);
        Assert.Equal(new long[] { outputs, inputs }, ecdm.shape);
        double[] actual = Values(ecdm), actualNormalized = Values(normalized);
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < inputs; i++)
            {
                Assert.Equal(expected[o, i], actual[o * inputs + i], 1e-6);
                Assert.Equal(expectedNormalized[o, i], actualNormalized[o * inputs + i], 1e-6);
            }
        Assert.All(new[] { 1, 4 }, closed => Assert.Equal(0.0, actual[2 * inputs + closed]));
    }

    [Fact]
    public void Ecdm_entry_is_the_expected_output_change_when_the_channel_is_removed()
    {
        // The definition the closed form approximates: ECDM[o, i] = E[conv(X; W) - conv(X; W_{-i})]
        // for X = ReLU(BN(Y)). With an N(0, 1) input and BN statistics (0, 1 - eps) in eval mode BN(Y) is
        // exactly N(b, g^2), and with a 1x1 convolution the equality is exact in expectation.
        const int outputs = 3, inputs = 4, batch = 4096, side = 16;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(99);
        using var layer = new SelectiveConv2d(inputs, outputs, kernelSize: 1, k: 0, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        Assign(layer, "norm.weight", new[] { 1.0, -0.5, 2.0, 0.3 });
        Assign(layer, "norm.bias", new[] { 0.2, 0.4, -1.0, -0.1 });
        MakeBatchNormIdentityStatistics(layer);
        double[] ecdm = Values(layer.Ecdm());

        var input = randn(new long[] { batch, inputs, side, side }, ScalarType.Float64, generator: generator);
        var full = layer.call(input);
        var convWeight = State(layer, "conv.weight");
        var original = convWeight.clone();
        for (int i = 0; i < inputs; i++)
        {
            convWeight.copy_(original);
            convWeight.narrow(1, i, 1).zero_();   // W_{-i}: channel i pruned
            var change = (full - layer.call(input)).mean(new long[] { 2, 3 });   // per image and output
            double[] meanChange = Values(change.mean(new long[] { 0 }));
            double[] standardError = Values(change.std(dim: 0) / Math.Sqrt(batch));
            for (int o = 0; o < outputs; o++)
            {
                output.WriteLine($"ECDM[{o},{i}] = {ecdm[o * inputs + i]:F5}, measured {meanChange[o]:F5} +- {standardError[o]:F5}");
                Assert.InRange(ecdm[o * inputs + i], meanChange[o] - 5 * standardError[o], meanChange[o] + 5 * standardError[o]);
            }
        }
    }

    [Fact]
    public void Grouped_convolution_gives_zero_damage_across_groups()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        var norm = nn.BatchNorm2d(4);
        var conv = nn.Conv2d(4, 6, 3, groups: 2, bias: false);
        using (no_grad())
        {
            norm.weight.copy_(randn(4, generator: generator));
            norm.bias!.copy_(randn(4, generator: generator));
        }

        double[] ecdm = Values(ChannelImportance.Ecdm(norm, conv));
        double[] kernelSums = Values(conv.weight!.sum(new long[] { 2, 3 }));   // 6 x 2
        double[] g = Values(norm.weight), b = Values(norm.bias!);

        for (int o = 0; o < 6; o++)
            for (int i = 0; i < 4; i++)
            {
                bool sameGroup = o / 3 == i / 2;
                double expected = sameGroup ? kernelSums[o * 2 + i % 2] * ExpectedRelu(g[i], b[i]) : 0;
                Assert.Equal(expected, ecdm[o * 4 + i], 1e-5);
            }
    }

    [Fact]
    public void Mismatched_chain_is_rejected_with_a_clear_message()
    {
        using var norm = nn.BatchNorm2d(5);
        using var conv = nn.Conv2d(4, 6, 1);
        var error = Assert.Throws<ArgumentException>(() => ChannelImportance.Ecdm(norm, conv));
        Assert.Contains("5 channels", error.Message);
        Assert.Contains("reads 4", error.Message);
    }

    [Fact]
    public void Gini_and_normalized_entropy_take_their_textbook_values()
    {
        // [1, 2, 3, 4]: sum over ordered pairs of |x_i - x_j| = 20, n^2 = 16, mean 2.5 -> 20 / (2 * 16 * 2.5).
        Assert.Equal(0.25, ChannelImportance.Gini([1, 2, 3, 4]), 12);
        Assert.Equal(0.0, ChannelImportance.Gini([3, 3, 3]), 12);
        Assert.Equal(0.75, ChannelImportance.Gini([0, 0, 5, 0]), 12);
        Assert.Equal(1.0, ChannelImportance.NormalizedEntropy([2, 2, 2, 2]), 12);
        Assert.Equal(0.0, ChannelImportance.NormalizedEntropy([0, 7, 0]), 12);
        // p = (1/4, 3/4): H = -(0.25 ln 0.25 + 0.75 ln 0.75) / ln 2.
        Assert.Equal(0.8112781244591328, ChannelImportance.NormalizedEntropy([1, 3]), 12);
        Assert.True(double.IsNaN(ChannelImportance.Gini([0, 0])));
        Assert.Throws<ArgumentException>(() => ChannelImportance.Gini([1, -1]));
    }

    [Fact]
    public void Analysis_of_a_chain_reports_column_importances_and_their_evenness()
    {
        using var scope = NewDisposeScope();
        using var norm = nn.BatchNorm2d(3);
        using var conv = nn.Conv2d(3, 2, 1, bias: false);
        using (no_grad())
        {
            norm.weight.copy_(tensor(new[] { 1f, 1f, 1f }));
            norm.bias!.copy_(tensor(new[] { 0f, 0f, -30f }));   // channel 2 never fires
            conv.weight!.copy_(tensor(new[] { 1f, 3f, 5f, 1f, 1f, 5f }).view(2, 3, 1, 1));
        }

        var report = ChannelImportance.Analyze(norm, conv);

        // Rows of the normalised ECDM: (1/4, 3/4, 0) and (1/2, 1/2, 0); columns' L2 norms below.
        double[] expected = [Math.Sqrt(1.0 / 16 + 1.0 / 4), Math.Sqrt(9.0 / 16 + 1.0 / 4), 0];
        Assert.Equal(3, report.Importance.Count);
        for (int i = 0; i < 3; i++)
            Assert.Equal(expected[i], report.Importance[i], 5);
        Assert.Equal(ChannelImportance.Gini(expected), report.Gini, 5);
        Assert.Equal(ChannelImportance.NormalizedEntropy(expected), report.NormalizedEntropy, 5);
        Assert.InRange(report.Gini, 0.3, 0.5);
    }
}
