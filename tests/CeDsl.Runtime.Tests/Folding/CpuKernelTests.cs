using CeDsl.Kernels;
using CeDsl.Folding;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Folding;

/// <summary>
/// The folded CE and AII run their CPU kernels when no gradient is recorded and libtorch's operators
/// when one is; both must give the same numbers, in place or not.
/// </summary>
public class CpuKernelTests
{
    /// <summary>
    /// Channels and group sizes that exercise the map's 4-row blocks and its leftover rows (d = 2, 6 rows
    /// of 8), the stem's d = 64, and H*W that leave positions after the last whole tile.
    /// </summary>
    public static TheoryData<long, int, long, long, string> Shapes() => new()
    {
        { 64, 64, 9, 9, "float32" },
        { 32, 16, 7, 5, "float64" },
        { 48, 8, 6, 6, "float64" },
        { 6, 16, 3, 11, "float64" },   // C = 6: d halves to 2
        { 24, 16, 1, 2, "float32" },   // two positions: no whole tile at all
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void The_kernels_give_the_operators_numbers(long channels, int groupSize, long h, long w, string type)
    {
        // Samples enough for one loop item per sample (variance, gate, maps), and one sample: the passes one after the other.
        foreach (var samples in new[] { FusedBatch, 1L })
            AssertKernelsMatchOperators(samples, channels, groupSize, h, w, type == "float64" ? float64 : float32);
    }

    [Fact]
    public void Non_finite_input_is_reported_when_each_sample_is_one_item()
    {
        using var ce = new FoldedChannelEquilibrium(8, groupSize: 4);
        using var noGrad = no_grad();
        var x = randn(FusedBatch, 8, 4, 4);
        x[FusedBatch - 2, 3, 2, 2] = float.PositiveInfinity;

        Assert.True(CpuKernels.FusesSamples(FusedBatch));
        var error = Assert.Throws<ArgumentException>(() => ce.call(x));

        Assert.Contains("FoldedChannelEquilibrium", error.Message);
        Assert.Contains("NaN or infinite", error.Message);
    }

    private static void AssertKernelsMatchOperators(long samples, long channels, int groupSize, long h, long w, ScalarType dtype)
    {
        using var ce = Randomized(new FoldedChannelEquilibrium(channels, groupSize, dtype: dtype), seed: 3);
        var input = randn(new[] { samples, channels, h, w }, dtype: dtype, generator: new Generator(4)) * 3 + 1;

        Tensor kernels;
        using (no_grad())
            kernels = ce.call(input);
        var operators = ce.call(input.detach().requires_grad_(true)).detach();

        Assert.Equal(input.shape, kernels.shape);
        FoldingEquivalenceTests.AssertClose(operators, kernels, dtype == float64 ? 1e-12 : 1e-5);
    }

    [Theory]
    [InlineData(64, 9, 9, "float32")]
    [InlineData(32, 7, 5, "float64")]
    [InlineData(24, 1, 2, "float32")]
    [InlineData(5, 33, 1, "float64")]
    public void The_kernel_variance_is_the_operators_variance(long channels, long h, long w, string type)
    {
        var dtype = type == "float64" ? float64 : float32;
        var input = randn(new[] { 3, channels, h, w }, dtype: dtype, generator: new Generator(5)) * 2 + 100;

        var kernel = FoldedAdaptiveInstanceInverse.InstanceVariance(input, "test");
        var operators = FoldedAdaptiveInstanceInverse.InstanceVariance(input.requires_grad_(true), "test").detach();

        Assert.True(kernel.allclose(operators, rtol: dtype == float64 ? 1e-12 : 1e-4, atol: 0));
        Assert.True(kernel.allclose(input.detach().var(new long[] { 2, 3 }), rtol: dtype == float64 ? 1e-12 : 1e-4, atol: 0));
    }

    [Fact]
    public void An_inplace_CE_writes_its_output_over_its_input_and_returns_its_own_handle()
    {
        using var ce = Randomized(new FoldedChannelEquilibrium(32, 16, inplace: true, dtype: float64), seed: 6);
        using var copy = Randomized(new FoldedChannelEquilibrium(32, 16, dtype: float64), seed: 6);
        using var noGrad = no_grad();
        var input = randn(new[] { 4L, 32, 6, 5 }, dtype: float64, generator: new Generator(7));
        var original = input.clone();

        var expected = copy.call(original);
        var output = ce.call(input);

        Assert.True(ce.InPlace);
        Assert.False(Same(original, input));
        Assert.True(Same(output, expected) && Same(input, expected));
        output.Dispose();
        Assert.Equal(4, input.shape[0]); // the input's handle survives the output's
    }

    [Fact]
    public void An_inplace_AII_scales_its_input_and_returns_its_own_handle()
    {
        using var aii = Randomized(new FoldedAdaptiveInstanceInverse(16, inplace: true, dtype: float64), seed: 8);
        using var copy = Randomized(new FoldedAdaptiveInstanceInverse(16, dtype: float64), seed: 8);
        using var noGrad = no_grad();
        var input = randn(new[] { 3L, 16, 5, 5 }, dtype: float64, generator: new Generator(9));

        var expected = copy.call(input.clone());
        var output = aii.call(input);

        Assert.True(Same(output, expected) && Same(input, expected));
        output.Dispose();
        Assert.Equal(3, input.shape[0]);
    }

    [Fact]
    public void An_inplace_CE_leaves_its_input_alone_while_a_gradient_is_recorded()
    {
        using var ce = Randomized(new FoldedChannelEquilibrium(16, 8, inplace: true, dtype: float64), seed: 10);
        var input = randn(new[] { 2L, 16, 4, 4 }, dtype: float64, generator: new Generator(11)).requires_grad_(true);
        var original = input.detach().clone();

        var output = ce.call(input);
        output.sum().backward();

        Assert.True(Same(input.detach(), original));
        Assert.NotNull(input.grad);
    }

    private static long FusedBatch => 2L * Math.Max(1, get_num_threads()) + 1;

    private static bool Same(Tensor a, Tensor b) => a.allclose(b, rtol: 0, atol: 0);

    /// <summary>Non-trivial folded state: weight, gate scale and gate all random, so that the map is not the identity.</summary>
    private static T Randomized<T>(T module, ulong seed) where T : nn.Module
    {
        var generator = new Generator(seed);
        using (no_grad())
            foreach (var (_, parameter) in module.named_parameters())
                parameter.copy_(randn(parameter.shape, dtype: parameter.dtype, generator: generator) * 0.3);
        using (no_grad())
            foreach (var (_, buffer) in module.named_buffers())
                buffer.copy_(randn(buffer.shape, dtype: buffer.dtype, generator: generator) * 0.3 + 0.5);
        return module;
    }
}
