using CeDsl.Selective;
using TorchSharp;
using Xunit.Abstractions;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

public class DeallocTests(ITestOutputHelper output)
{
    /// <summary>
    /// The dealloc rule written out with plain loops: sort channels ascending by their largest normalised
    /// damage (ties by index), walk the sorted list accumulating each row, and release the channels before
    /// the first position where some row's running sum exceeds gamma. Also returns how far the decisive
    /// sums are from gamma, so the test can refuse a setup that sits on the threshold.
    /// </summary>
    private static (List<int> Released, double Margin) ExpectedRelease(double[,] normalized, double gamma)
    {
        int outputs = normalized.GetLength(0), inputs = normalized.GetLength(1);
        var key = new double[inputs];
        for (int i = 0; i < inputs; i++)
            for (int o = 0; o < outputs; o++)
                key[i] = Math.Max(key[i], normalized[o, i]);
        var order = new List<int>();
        for (int i = 0; i < inputs; i++)
        {
            int position = 0;
            while (position < order.Count && key[order[position]] <= key[i]) position++;
            order.Insert(position, i);
        }

        double margin = double.PositiveInfinity;
        var sums = new double[outputs];
        for (int position = 0; position < inputs; position++)
        {
            double worst = 0;
            for (int o = 0; o < outputs; o++)
            {
                sums[o] += normalized[o, order[position]];
                worst = Math.Max(worst, sums[o]);
            }
            margin = Math.Min(margin, Math.Abs(worst - gamma));
            if (worst > gamma)
                return (order.GetRange(0, position), margin);
        }
        return ([], margin);
    }

    private static double[,] NormalizedEcdmOf(SelectiveConv2d layer)
    {
        int outputs = (int)layer.OutChannels, inputs = (int)layer.InChannels;
        double[,] ecdm = EcdmByLoops(Values(State(layer, "norm.weight")), Values(State(layer, "norm.bias")),
            Values(State(layer, "conv.weight")), outputs, inputs, (int)(layer.KernelSize * layer.KernelSize),
            Values(State(layer, "is_open")));
        return NormalizeByLoops(ecdm);
    }

    [Fact]
    public void Dealloc_closes_exactly_the_channels_the_rule_selects_and_resets_their_pointers()
    {
        const int inputs = 24;
        using var scope = NewDisposeScope();
        var generator = new Generator(2024);
        using var layer = new SelectiveConv2d(inputs, 6, kernelSize: 3, gamma: 0.05, k: 3, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        long[] pointers = Enumerable.Range(0, inputs).Select(i => (long)((i + 1) % inputs)).ToArray();
        Assign(layer, "_ind_ptr", tensor(pointers));

        var (expected, margin) = ExpectedRelease(NormalizedEcdmOf(layer), 0.05);
        Assert.True(margin > 1e-6, $"test setup sits on the gamma threshold (margin {margin})");
        Assert.InRange(expected.Count, 3, inputs - 3);

        var result = layer.Dealloc();

        output.WriteLine($"released {string.Join(", ", result.Released)}");
        Assert.Equal(expected.Select(i => (long)i), result.Released);
        Assert.Equal(expected.Order().Select(i => (long)i), result.NewlyClosed);
        Assert.Equal(inputs - expected.Count, result.OpenChannels);
        bool[] open = layer.OpenMask();
        long[] after = layer.CopySources();
        for (int i = 0; i < inputs; i++)
        {
            Assert.Equal(!expected.Contains(i), open[i]);
            Assert.Equal(expected.Contains(i) ? -1 : pointers[i], after[i]);
        }
    }

    [Fact]
    public void Repeated_dealloc_counts_closed_channels_as_harmless_and_reports_only_new_ones()
    {
        const int inputs = 20;
        using var scope = NewDisposeScope();
        var generator = new Generator(77);
        using var layer = new SelectiveConv2d(inputs, 5, kernelSize: 1, gamma: 0.03, k: 0, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);

        var first = layer.Dealloc();
        var (expected, margin) = ExpectedRelease(NormalizedEcdmOf(layer), 0.03);
        Assert.True(margin > 1e-6, $"test setup sits on the gamma threshold (margin {margin})");

        var second = layer.Dealloc();

        output.WriteLine($"first {string.Join(", ", first.Released)}; second {string.Join(", ", second.Released)}");
        Assert.NotEmpty(first.Released);
        Assert.Equal(expected.Select(i => (long)i), second.Released);
        Assert.Equal(first.Released.Order(), second.Released.Take(first.Released.Count).Order());
        Assert.Equal(expected.Except(first.Released.Select(i => (int)i)).Order().Select(i => (long)i), second.NewlyClosed);
        Assert.Equal(inputs - expected.Count, layer.OpenChannelCount);
    }

    [Fact]
    public void Dealloc_changes_each_expected_output_by_at_most_gamma_of_its_total_expected_contribution()
    {
        // What the gamma bound promises: for every output o, the released set C satisfies
        // sum_{i in C} |ECDM[o, i]| <= gamma * (sum_i |ECDM[o, i]| + 1e-8), and ECDM[o, i] is the expected,
        // spatially averaged change of output o when channel i is removed. Measured here: inputs N(0, 1)
        // with BN statistics (0, 1 - eps) in eval mode, so that BN's output is exactly N(b, g^2), and a
        // 3x3 convolution without padding, so that every output position sees the whole kernel. The change
        // of output o is averaged over positions per image, then over 6000 images (with its standard error).
        const int inputs = 16, outputs = 4, batch = 6000, side = 10;
        const double gamma = 0.05;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(31);
        using var layer = new SelectiveConv2d(inputs, outputs, kernelSize: 3, padding: 0, gamma: gamma, k: 0, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        MakeBatchNormIdentityStatistics(layer);
        double[] ecdm = Values(layer.Ecdm());
        var input = randn(new long[] { batch, inputs, side, side }, ScalarType.Float64, generator: generator);
        var before = layer.call(input);

        var result = layer.Dealloc();
        var change = (before - layer.call(input)).mean(new long[] { 2, 3 });

        Assert.True(result.NewlyClosed.Count >= 3, $"only {result.NewlyClosed.Count} channels released; the test needs a real set");
        double[] measured = Values(change.mean(new long[] { 0 }));
        double[] standardError = Values(change.std(dim: 0) / Math.Sqrt(batch));
        for (int o = 0; o < outputs; o++)
        {
            double predicted = result.NewlyClosed.Sum(i => ecdm[o * inputs + (int)i]);
            double total = Enumerable.Range(0, inputs).Sum(i => Math.Abs(ecdm[o * inputs + i]));
            double bound = gamma * (total + 1e-8);
            output.WriteLine($"output {o}: expected change {measured[o]:F6} +- {standardError[o]:F6} (predicted {predicted:F6}), " +
                $"relative {Math.Abs(measured[o]) / total:F5}, bound gamma = {gamma}");
            Assert.True(Math.Abs(predicted) <= bound, $"predicted change {predicted} above the bound {bound}");
            Assert.InRange(measured[o], predicted - 5 * standardError[o], predicted + 5 * standardError[o]);
            Assert.True(Math.Abs(measured[o]) <= bound + 5 * standardError[o], $"measured change {measured[o]} above the bound {bound}");
        }
    }

    [Fact]
    public void Dealloc_with_the_reference_gamma_keeps_channels_that_matter()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(8);
        using var layer = new SelectiveConv2d(12, 4, kernelSize: 1, k: 3, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        Assign(layer, "norm.bias", Enumerable.Range(0, 12).Select(i => i < 3 ? -40.0 : 0.5).ToArray());

        var (expected, _) = ExpectedRelease(NormalizedEcdmOf(layer), 0.001);

        var result = layer.Dealloc();

        // Channels 0..2 never fire (E ~ 0); the rest all matter far more than 0.001 of any output.
        Assert.Equal(new long[] { 0, 1, 2 }, result.NewlyClosed);
        Assert.Equal(expected.Select(i => (long)i), result.Released);
    }
}
