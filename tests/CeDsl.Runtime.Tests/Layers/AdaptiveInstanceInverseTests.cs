using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

public class AdaptiveInstanceInverseTests
{
    private static Tensor Input(int seed, long n = 4, long c = 8, long h = 5, long w = 4, double offset = 0.5) =>
        randn(new long[] { n, c, h, w }, dtype: float64, generator: new Generator((ulong)seed))
        * linspace(0.5, 3.0, c, dtype: float64).view(1, c, 1, 1) + offset;

    [Fact]
    public void Training_scales_every_instance_by_the_gate_over_the_batch_scale()
    {
        var x = Input(1, offset: 4);
        using var aii = new AdaptiveInstanceInverse(8, dtype: float64);

        var output = aii.call(x);

        var state = aii.state_dict();
        var gate = ReferenceMath.Gate(ReferenceMath.InstanceVariance(x), state);
        var expected = (gate / ReferenceMath.Scale(x)).view(4, 8, 1, 1) * x;
        Assert.True(output.allclose(expected, rtol: 1e-10, atol: 1e-12));
        Assert.Equal(0.1 * ReferenceMath.Scale(x), state["running_scale"].item<double>(), 1e-12);
    }

    [Fact]
    public void Running_scale_after_three_steps_and_evaluation_with_it()
    {
        using var aii = new AdaptiveInstanceInverse(8, dtype: float64);
        double expectedScale = 0;
        for (int step = 0; step < 3; step++)
        {
            var x = Input(10 + step) * (step + 1);
            aii.call(x);
            expectedScale = 0.9 * expectedScale + 0.1 * ReferenceMath.Scale(x);
        }
        var state = aii.state_dict();
        Assert.Equal(expectedScale, state["running_scale"].item<double>(), 1e-12);

        aii.eval();
        var probe = Input(20);
        var output = aii.call(probe);
        var gate = ReferenceMath.Gate(ReferenceMath.InstanceVariance(probe), state);
        Assert.True(output.allclose((gate / expectedScale).view(4, 8, 1, 1) * probe, rtol: 1e-10, atol: 1e-12));
        using (no_grad())
            Assert.True(aii.call(probe).allclose(output, rtol: 1e-12, atol: 1e-14), "the no-gradient path must agree");
        Assert.Equal(expectedScale, state["running_scale"].item<double>(), 1e-15);
    }

    [Fact]
    public void State_dict_has_the_reference_names_and_shapes()
    {
        using var aii = new AdaptiveInstanceInverse(64, reduction: 4);
        var shapes = aii.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.shape);
        Assert.Equal(new[] { "fc.0.weight", "fc.1.bias", "fc.1.weight", "fc.3.weight", "running_scale" }, shapes.Keys.Order());
        Assert.Equal(new long[] { 16, 64 }, shapes["fc.0.weight"]);
        Assert.Equal(new long[] { 16 }, shapes["fc.1.weight"]);
        Assert.Equal(new long[] { 16 }, shapes["fc.1.bias"]);
        Assert.Equal(new long[] { 64, 16 }, shapes["fc.3.weight"]);
        Assert.Equal(new long[] { 1 }, shapes["running_scale"]);
        Assert.Equal(8, new AdaptiveInstanceInverse(64, reduction: 8).state_dict()["fc.0.weight"].shape[0]);
    }
}
