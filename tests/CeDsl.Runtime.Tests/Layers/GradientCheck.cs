using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>Autograd gradients against central finite differences, in float64.</summary>
internal static class GradientCheck
{
    /// <summary>
    /// For loss = sum(output() * w) with a fixed random w, compares the autograd gradient of every
    /// element of every tensor in <paramref name="inputs"/> (leaves with requires_grad) with
    /// (loss(t + h) - loss(t - h)) / 2h.
    /// </summary>
    public static void Verify(Func<Tensor> output, IReadOnlyList<(string name, Tensor tensor)> inputs,
        double step = 1e-6, double tolerance = 1e-6)
    {
        long[] shape;
        using (no_grad())
            shape = output().shape;
        var weights = randn(shape, dtype: float64, generator: new Generator(7));
        double Loss()
        {
            using var noGrad = no_grad();
            return (output() * weights).sum().item<double>();
        }

        foreach (var (_, tensor) in inputs)
            tensor.grad?.zero_();
        (output() * weights).sum().backward();

        foreach (var (name, tensor) in inputs)
        {
            Assert.NotNull(tensor.grad);
            var analytic = tensor.grad!.reshape(-1).data<double>().ToArray();
            var flat = tensor.detach().view(-1);
            for (long i = 0; i < flat.shape[0]; i++)
            {
                double original = flat[i].item<double>();
                flat[i] = original + step;
                double plus = Loss();
                flat[i] = original - step;
                double minus = Loss();
                flat[i] = original;
                double numeric = (plus - minus) / (2 * step);
                double error = Math.Abs(numeric - analytic[i]);
                Assert.True(error <= tolerance * Math.Max(1, Math.Abs(numeric)),
                    $"d loss / d {name}[{i}]: autograd {analytic[i]:R}, finite differences {numeric:R} (error {error:E2})");
            }
        }
    }
}
