using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>Autograd through the layers against central finite differences, float64.</summary>
public class GradientTests
{
    private static Tensor Leaf(int seed, params long[] shape) =>
        (randn(shape, dtype: float64, generator: new Generator((ulong)seed))
         * linspace(0.5, 2.0, shape[1], dtype: float64).view(1, shape[1], 1, 1) + 0.3).requires_grad_();

    /// <summary>Moves every parameter away from its special initial value (LayerNorm 1/0, x_weight 0).</summary>
    private static void Perturb(Module module, int seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var parameter in module.parameters())
            parameter.add_(0.2 * randn(parameter.shape, dtype: parameter.dtype, generator: generator));
    }

    private static (string, Tensor)[] With(Tensor x, Module module) =>
        module.named_parameters().Select(entry => (entry.name, (Tensor)entry.parameter)).Prepend(("input", x)).ToArray();

    [Theory]
    [MemberData(nameof(CePaths.Both), MemberType = typeof(CePaths))]
    public void Channel_equilibrium_in_training_input_and_every_parameter(CePath path)
    {
        using var ce = new ChannelEquilibrium(16, groupSize: 4, reduction: 4, dtype: float64).On(path);
        Perturb(ce, 1);
        var x = Leaf(2, 3, 16, 4, 4);
        var inputs = With(x, ce);
        Assert.Equal(
            new[] { "input", "x_weight", "AR.fc.0.weight", "AR.fc.1.weight", "AR.fc.1.bias", "AR.fc.3.weight" }.Order(),
            inputs.Select(entry => entry.Item1).Order());

        GradientCheck.Verify(() => ce.call(x), inputs);
        ce.AssertRanOn(path);
    }

    [Theory]
    [MemberData(nameof(CePaths.Both), MemberType = typeof(CePaths))]
    public void Channel_equilibrium_in_evaluation_input_and_every_parameter(CePath path)
    {
        using var ce = new ChannelEquilibrium(8, groupSize: 4, dtype: float64).On(path);
        Perturb(ce, 3);
        using (no_grad())
            ce.call(randn(new long[] { 4, 8, 4, 4 }, dtype: float64, generator: new Generator(4)));
        ce.eval();
        var x = Leaf(5, 2, 8, 4, 4);

        GradientCheck.Verify(() => ce.call(x), With(x, ce));
        ce.AssertRanOn(path);
    }

    [Fact]
    public void Batch_decorrelation_with_pooling()
    {
        using var bd = new BatchDecorrelation(8, groupSize: 4, pool: true, dtype: float64);
        var x = Leaf(6, 2, 8, 4, 6);
        GradientCheck.Verify(() => bd.call(x), With(x, bd));
    }

    [Fact]
    public void Adaptive_instance_inverse_and_squeeze_excitation()
    {
        using var aii = new AdaptiveInstanceInverse(8, dtype: float64);
        Perturb(aii, 7);
        var x = Leaf(8, 2, 8, 3, 3);
        GradientCheck.Verify(() => aii.call(x), With(x, aii));

        using var se = new SqueezeExcitation(8, reduction: 2, dtype: float64);
        var y = Leaf(9, 2, 8, 3, 3);
        GradientCheck.Verify(() => se.call(y), With(y, se));
    }
}
