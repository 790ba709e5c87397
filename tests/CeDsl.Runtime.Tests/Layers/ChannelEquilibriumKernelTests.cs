using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>
/// The CPU kernels of <see cref="ChannelEquilibrium"/> against its libtorch operators (OperatorsOnly) on
/// the same state and input: outputs, input and parameter gradients, running statistics, in training and
/// evaluation, with and without a gradient recorded. The float32 kernels are held to the operators in float64
/// on the same values, the exact result to float32's tolerance: the float32 operators' own rounding exceeds it
/// in sums over the whole activation (x_weight's gradient in evaluation, about 2e-5 of its size at 4x32x14x14),
/// and not always by the same amount.
/// </summary>
public class ChannelEquilibriumKernelTests
{
    /// <summary>
    /// Shapes that exercise the 4 x 4 blocks of the products and their edges (d = 1 and 2, 6 rows), the
    /// stem's d = 64, positions that leave partial vectors and tiles (a last tile that overlaps the one
    /// before it, or a staged one), and batches below and above the one that evaluates one sample per loop item.
    /// </summary>
    public static TheoryData<long, long, int, long, long, string> Shapes() => new()
    {
        { 4, 32, 16, 7, 5, "float64" },
        { 2, 32, 16, 7, 5, "float64" },
        { 3, 64, 64, 9, 9, "float64" },
        { 5, 6, 16, 3, 11, "float64" },   // C = 6: d halves to 2
        { 3, 9, 16, 4, 6, "float64" },    // C = 9: d = 1, one channel per group
        { 4, 24, 16, 1, 2, "float64" },   // two positions: no whole vector
        { 6, 48, 8, 6, 6, "float64" },
        { 4, 32, 16, 14, 14, "float32" },
        { 19, 40, 16, 3, 3, "float32" },  // a batch of whole vectors and a tail in the gate's batch products
        { 3, 64, 64, 9, 9, "float32" },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Training_steps_give_the_operators_numbers(long n, long channels, int groupSize, long h, long w, string type)
    {
        var dtype = type == "float64" ? float64 : float32;
        using var kernels = Randomized(new ChannelEquilibrium(channels, groupSize, dtype: dtype), seed: 1);
        using var operators = ReferenceOnOperators(kernels, channels, groupSize);

        for (int step = 0; step < 2; step++)
        {
            var input = Input(n, channels, h, w, dtype, seed: 2 + step);
            var (kernelOutput, kernelGradients) = Step(kernels, input);
            var (operatorOutput, operatorGradients) = Step(operators, input.to(float64));

            Assert.True(kernels.RanOnKernels);
            Assert.False(operators.RanOnKernels);
            AssertClose(operatorOutput, kernelOutput, dtype, "output");
            foreach (var (name, gradient) in operatorGradients)
                AssertClose(gradient, kernelGradients[name], dtype, $"gradient of {name}");
            AssertSameState(operators, kernels, dtype);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Evaluation_gives_the_operators_numbers_with_and_without_a_gradient(long n, long channels, int groupSize, long h, long w, string type)
    {
        var dtype = type == "float64" ? float64 : float32;
        using var kernels = Randomized(new ChannelEquilibrium(channels, groupSize, dtype: dtype), seed: 3);
        using var operators = ReferenceOnOperators(kernels, channels, groupSize);
        using (no_grad())
        {
            var warmUp = Input(n + 1, channels, h, w, dtype, seed: 4);
            kernels.call(warmUp);
            operators.call(warmUp.to(float64));
        }
        kernels.eval();
        operators.eval();
        var input = Input(n, channels, h, w, dtype, seed: 5);

        using (no_grad())
            AssertClose(operators.call(input.to(float64)), kernels.call(input), dtype, "output without gradient");
        Assert.True(kernels.RanOnKernels);

        var (kernelOutput, kernelGradients) = Step(kernels, input);
        var (operatorOutput, operatorGradients) = Step(operators, input.to(float64));
        AssertClose(operatorOutput, kernelOutput, dtype, "output");
        foreach (var (name, gradient) in operatorGradients)
            AssertClose(gradient, kernelGradients[name], dtype, $"gradient of {name}");
        AssertSameState(operators, kernels, dtype);
    }

    [Fact]
    public void A_retained_graph_gives_the_same_gradients_twice()
    {
        using var kernels = Randomized(new ChannelEquilibrium(32, 16, dtype: float64), seed: 6);
        using var operators = ReferenceOnOperators(kernels, 32, 16);
        var input = Input(4, 32, 6, 6, float64, seed: 7);
        var gradients = new[] { kernels, operators }.Select(ce =>
        {
            var x = input.clone().requires_grad_(true);
            var output = ce.call(x);
            var upstream = randn(output.shape, dtype: float64, generator: new Generator(8));
            output.backward([upstream], retain_graph: true);
            var once = x.grad!.clone();
            output.backward([upstream]);
            Assert.True(x.grad!.allclose(2 * once, rtol: 1e-14, atol: 0));
            return (Input: x.grad!.clone(), XWeight: ce.named_parameters().Single(p => p.name == "x_weight").parameter.grad!.clone());
        }).ToList();

        AssertClose(gradients[1].Input, gradients[0].Input, float64, "input gradient after two backward passes");
        AssertClose(gradients[1].XWeight, gradients[0].XWeight, float64, "x_weight gradient after two backward passes");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Second_order_gradients_are_the_operators(bool training)
    {
        using var kernels = Randomized(new ChannelEquilibrium(16, 8, dtype: float64), seed: 11);
        using var operators = ReferenceOnOperators(kernels, 16, 8);
        if (!training)
        {
            using (no_grad())
                foreach (var ce in new[] { kernels, operators })
                    ce.call(Input(4, 16, 5, 5, float64, seed: 12));
            kernels.eval();
            operators.eval();
        }
        var input = Input(3, 16, 5, 5, float64, seed: 13);
        var weights = randn(input.shape, dtype: float64, generator: new Generator(14));
        var results = new[] { kernels, operators }.Select(ce =>
        {
            var x = input.clone().requires_grad_(true);
            ce.zero_grad();
            var first = autograd.grad([(ce.call(x) * weights).sum()], [x], retain_graph: true, create_graph: true)[0];
            first.square().sum().backward();
            var gradients = ce.named_parameters().ToDictionary(entry => entry.name, entry => entry.parameter.grad!.clone());
            gradients["input"] = x.grad!.clone();
            return (First: first.detach(), Gradients: gradients);
        }).ToList();

        Assert.True(kernels.RanOnKernels);
        AssertClose(results[1].First, results[0].First, float64, "first-order input gradient");
        foreach (var (name, gradient) in results[1].Gradients)
            AssertClose(gradient, results[0].Gradients[name], float64, $"second-order gradient of {name}");
    }

    [Theory]
    [InlineData(4)]
    [InlineData(2)]
    public void Non_finite_input_in_evaluation_is_rejected_on_the_kernels(long samples)
    {
        using var ce = new ChannelEquilibrium(16, 8);
        using (no_grad())
            ce.call(Input(4, 16, 5, 5, float32, seed: 9));
        ce.eval();
        var x = Input(samples, 16, 5, 5, float32, seed: 10);
        x[samples - 1, 11, 2, 3] = float.NaN;

        using (no_grad())
        {
            var error = Assert.Throws<ArgumentException>(() => ce.call(x));
            Assert.StartsWith("ChannelEquilibrium:", error.Message);
            Assert.Contains("NaN or infinite", error.Message);
        }
        Assert.True(ce.RanOnKernels);
    }

    /// <summary>
    /// One forward and backward with a fixed upstream gradient (the same values in either type); the output and
    /// the gradient of the input and of every parameter.
    /// </summary>
    internal static (Tensor Output, Dictionary<string, Tensor> Gradients) Step(ChannelEquilibrium ce, Tensor input)
    {
        var x = input.detach().clone().requires_grad_(true);
        ce.zero_grad();
        var output = ce.call(x);
        var upstream = randn(output.shape, dtype: float32, generator: new Generator(9)).to(output.dtype);
        output.backward([upstream]);
        var gradients = ce.named_parameters().ToDictionary(entry => entry.name, entry => entry.parameter.grad!.clone());
        gradients["input"] = x.grad!.clone();
        return (output.detach(), gradients);
    }

    internal static Tensor Input(long n, long channels, long h, long w, ScalarType dtype, int seed) =>
        randn(new[] { n, channels, h, w }, dtype: float64, generator: new Generator((ulong)seed))
            .mul(linspace(0.5, 2.0, channels, dtype: float64).view(1, channels, 1, 1)).add(0.3).to(dtype);

    /// <summary>Moves every parameter away from its special initial value (LayerNorm 1/0, x_weight 0).</summary>
    internal static ChannelEquilibrium Randomized(ChannelEquilibrium ce, int seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var parameter in ce.parameters())
            parameter.add_(0.3 * randn(parameter.shape, dtype: float64, generator: generator).to(parameter.dtype));
        return ce;
    }

    /// <summary>A module with <paramref name="source"/>'s state, in float64, that runs libtorch's operators only.</summary>
    private static ChannelEquilibrium ReferenceOnOperators(ChannelEquilibrium source, long channels, int groupSize)
    {
        var copy = new ChannelEquilibrium(channels, groupSize, dtype: float64) { OperatorsOnly = true };
        copy.load_state_dict(source.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.to(float64)));
        return copy;
    }

    private static void AssertSameState(ChannelEquilibrium expected, ChannelEquilibrium actual, ScalarType dtype)
    {
        var state = actual.state_dict();
        foreach (var (key, value) in expected.state_dict())
            AssertClose(value, state[key], dtype, key);
    }

    private static void AssertClose(Tensor expected, Tensor actual, ScalarType dtype, string what)
    {
        double tolerance = dtype == float64 ? 1e-12 : 1e-5;
        double scale = Math.Max(1, expected.abs().max().to(float64).item<double>());
        double difference = (actual.to(float64) - expected.to(float64)).abs().max().item<double>();
        Assert.True(difference <= tolerance * scale, $"{what}: kernels differ from the operators by {difference:E2} (largest value {scale:E2})");
    }
}
