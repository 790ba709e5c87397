using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

public class SqueezeExcitationTests
{
    [Fact]
    public void Output_is_the_input_times_the_gate_of_its_global_average()
    {
        const long n = 3, c = 32, h = 5, w = 3;
        var x = randn(new long[] { n, c, h, w }, dtype: float64, generator: new Generator(1)) + 0.7;
        using var se = new SqueezeExcitation(c, reduction: 8, dtype: float64);
        var state = se.state_dict();

        var output = se.call(x);

        var expected = zeros(n, c, h, w, dtype: float64);
        for (long i = 0; i < n; i++)
        {
            var average = zeros(c, dtype: float64);
            for (long p = 0; p < h; p++)
                for (long q = 0; q < w; q++)
                    average += x[i, .., p, q];
            average /= h * w;
            var hidden = (state["fc.0.weight"].matmul(average) + state["fc.0.bias"]).clamp_min(0);
            var gate = (state["fc.2.weight"].matmul(hidden) + state["fc.2.bias"]).sigmoid();
            expected[i] = x[i] * gate.view(c, 1, 1);
        }
        Assert.True(output.allclose(expected, rtol: 1e-12, atol: 1e-12));

        se.eval();
        Assert.True(se.call(x).allclose(expected, rtol: 1e-12, atol: 1e-12));
        using (no_grad())
            Assert.True(se.call(x).allclose(expected, rtol: 1e-12, atol: 1e-12), "the no-gradient path must agree");
    }

    [Fact]
    public void State_dict_has_the_usual_names_and_shapes()
    {
        using var se = new SqueezeExcitation(64);
        var shapes = se.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.shape);
        Assert.Equal(new[] { "fc.0.bias", "fc.0.weight", "fc.2.bias", "fc.2.weight" }, shapes.Keys.Order());
        Assert.Equal(new long[] { 4, 64 }, shapes["fc.0.weight"]);
        Assert.Equal(new long[] { 4 }, shapes["fc.0.bias"]);
        Assert.Equal(new long[] { 64, 4 }, shapes["fc.2.weight"]);
        Assert.Equal(new long[] { 64 }, shapes["fc.2.bias"]);
    }
}
