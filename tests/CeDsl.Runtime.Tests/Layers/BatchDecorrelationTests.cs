using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

public class BatchDecorrelationTests
{
    private static Tensor Input(int seed, long n = 4, long c = 8, long h = 6, long w = 6, double offset = 0) =>
        randn(new long[] { n, c, h, w }, dtype: float64, generator: new Generator((ulong)seed))
        * linspace(0.5, 2.0, c, dtype: float64).view(1, c, 1, 1) + offset;

    [Fact]
    public void Training_output_is_wm_applied_to_the_uncentred_input()
    {
        // Per-channel means far from zero: wm @ (X - mean) would be far from wm @ X.
        var x = Input(1) + arange(8, dtype: float64).view(1, 8, 1, 1) * 5 + 10;
        using var bd = new BatchDecorrelation(8, groupSize: 4, dtype: float64);

        var output = bd.call(x);

        var (mean, wm) = ReferenceMath.Decorrelation(x, groupSize: 4);
        var expected = ReferenceMath.ApplyPerGroup(wm, x);
        Assert.True(output.allclose(expected, rtol: 1e-10, atol: 1e-10));
        var centredVersion = ReferenceMath.ApplyPerGroup(wm, x - mean.view(1, 8, 1, 1));
        Assert.True((output - centredVersion).abs().max().item<double>() > 1.0);
    }

    [Fact]
    public void Running_statistics_after_three_steps_match_the_hand_computed_averages()
    {
        using var bd = new BatchDecorrelation(8, groupSize: 4, dtype: float64);
        var expectedMean = zeros(2, 4, 1, dtype: float64);
        var expectedWm = eye(4, dtype: float64).repeat(2, 1, 1);
        for (int step = 0; step < 3; step++)
        {
            var x = Input(10 + step, offset: step - 1.0);
            bd.call(x);
            var (mean, wm) = ReferenceMath.Decorrelation(x, groupSize: 4);
            expectedMean = 0.9 * expectedMean + 0.1 * mean;
            expectedWm = 0.9 * expectedWm + 0.1 * wm;
        }

        var state = bd.state_dict();
        Assert.True(state["running_mean"].allclose(expectedMean, rtol: 1e-10, atol: 1e-12));
        Assert.True(state["running_wm"].allclose(expectedWm, rtol: 1e-10, atol: 1e-12));
        Assert.False(state["running_mean"].requires_grad);
        Assert.False(state["running_wm"].requires_grad);
    }

    [Fact]
    public void Evaluation_applies_running_wm_to_the_uncentred_input_and_ignores_running_mean()
    {
        using var bd = new BatchDecorrelation(8, groupSize: 4, dtype: float64);
        var state = bd.state_dict();
        var map = randn(new long[] { 2, 4, 4 }, dtype: float64, generator: new Generator(3));
        using (no_grad())
        {
            state["running_wm"].copy_(map);
            state["running_mean"].fill_(7.0);
        }
        bd.eval();
        var x = Input(4, offset: 3);

        var output = bd.call(x);

        Assert.True(output.allclose(ReferenceMath.ApplyPerGroup(map, x), rtol: 1e-12, atol: 1e-12));
        using (no_grad())
            state["running_mean"].fill_(-2.0);
        Assert.True(bd.call(x).allclose(output, rtol: 0, atol: 0));
        Assert.True(state["running_wm"].allclose(map, rtol: 0, atol: 0), "evaluation must not update the running statistics");
    }

    [Fact]
    public void Training_output_does_not_depend_on_the_running_statistics()
    {
        using var bd = new BatchDecorrelation(8, groupSize: 4, dtype: float64);
        var x = Input(5);
        var first = bd.call(x);
        using (no_grad())
        {
            bd.state_dict()["running_wm"].copy_(randn(new long[] { 2, 4, 4 }, dtype: float64, generator: new Generator(6)));
            bd.state_dict()["running_mean"].fill_(4.0);
        }
        Assert.True(bd.call(x).allclose(first, rtol: 0, atol: 0));
    }

    [Fact]
    public void Pooling_takes_the_covariance_of_the_pooled_input_divided_by_the_unpooled_M()
    {
        // Small values, so that eps is not negligible next to the covariance and the divisor shows.
        var x = Input(8, h: 8, w: 6, offset: 1) * 0.003;
        using var bd = new BatchDecorrelation(8, groupSize: 4, pool: true, dtype: float64);

        var output = bd.call(x);

        var (mean, wm) = ReferenceMath.Decorrelation(x, groupSize: 4, pool: true);
        Assert.True(output.allclose(ReferenceMath.ApplyPerGroup(wm, x), rtol: 1e-10, atol: 1e-10));
        Assert.True(bd.state_dict()["running_mean"].allclose(0.1 * mean, rtol: 1e-10, atol: 1e-12));

        // Dividing by the pooled M instead gives a different map: the pin is not vacuous.
        var (_, pooledM) = ReferenceMath.Decorrelation(ReferenceMath.MaxPool2x2(x), groupSize: 4);
        Assert.True((wm - pooledM).abs().max().item<double>() > 1e-3);
    }

    [Fact]
    public void A_one_by_one_map_is_fine_for_decorrelation()
    {
        using var bd = new BatchDecorrelation(8, groupSize: 4, dtype: float64);
        var x = Input(9, n: 16, h: 1, w: 1);
        var output = bd.call(x);
        var (_, wm) = ReferenceMath.Decorrelation(x, groupSize: 4);
        Assert.True(output.allclose(ReferenceMath.ApplyPerGroup(wm, x), rtol: 1e-10, atol: 1e-10));
    }
}
