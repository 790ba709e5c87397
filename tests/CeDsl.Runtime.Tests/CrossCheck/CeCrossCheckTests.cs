using CeDsl.IO;
using CeDsl.Layers;
using CeDsl.Runtime.Tests.Layers;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.CrossCheck;

/// <summary>
/// The TorchSharp modules against the independent PyTorch reference
/// (Fixtures/reference/ce_reference.py; the files and their tensor names are described in
/// Fixtures/reference/README.md). Float64 to 1e-6: training forward, input gradient, every
/// parameter gradient, running statistics after three training steps, evaluation forward.
/// Float32 modules get the same checks with the fixture rounded to float32, to 1e-4 of the
/// largest reference value (float32 rounding alone stays below 1e-6 of it here).
/// </summary>
public sealed class CeCrossCheckTests
{
    [Theory]
    [InlineData("ce_c32_g16.safetensors", 32, 16, false, 16, CePath.Kernels)]
    [InlineData("ce_c32_g16.safetensors", 32, 16, false, 16, CePath.Operators)]
    [InlineData("ce_c24_g16_halved.safetensors", 24, 16, false, 8, CePath.Kernels)]
    [InlineData("ce_c24_g16_halved.safetensors", 24, 16, false, 8, CePath.Operators)]
    [InlineData("ce_c16_g8_pool.safetensors", 16, 8, true, 8, CePath.Operators)]
    public void ChannelEquilibrium_matches_the_reference(string file, long channels, int groupSize, bool pool, int resolvedGroupSize, CePath path)
    {
        using var module = new ChannelEquilibrium(channels, groupSize, pool: pool, dtype: ScalarType.Float64).On(path);
        Assert.Equal(resolvedGroupSize, module.GroupSize);
        CrossCheck(module, file, ScalarType.Float64);
        module.AssertRanOn(path);
    }

    [Fact]
    public void BatchDecorrelation_matches_the_reference()
    {
        using var module = new BatchDecorrelation(24, groupSize: 16, dtype: ScalarType.Float64);
        Assert.Equal(8, module.GroupSize);
        CrossCheck(module, "bd_c24_g16_halved.safetensors", ScalarType.Float64);
    }

    [Fact]
    public void AdaptiveInstanceInverse_matches_the_reference()
    {
        using var module = new AdaptiveInstanceInverse(16, reduction: 4, dtype: ScalarType.Float64);
        CrossCheck(module, "aii_c16.safetensors", ScalarType.Float64);
    }

    [Theory]
    [MemberData(nameof(CePaths.Both), MemberType = typeof(CePaths))]
    public void ChannelEquilibrium_converted_with_to_float64_matches_the_reference(CePath path)
    {
        using var module = new ChannelEquilibrium(24, groupSize: 16).On(path);
        module.to(ScalarType.Float64);
        CrossCheck(module, "ce_c24_g16_halved.safetensors", ScalarType.Float64);
        module.AssertRanOn(path);
    }

    [Theory]
    [InlineData("ce_c32_g16.safetensors", 32, 16, false, CePath.Kernels)]
    [InlineData("ce_c32_g16.safetensors", 32, 16, false, CePath.Operators)]
    [InlineData("ce_c16_g8_pool.safetensors", 16, 8, true, CePath.Operators)]
    public void ChannelEquilibrium_in_float32_matches_the_reference(string file, long channels, int groupSize, bool pool, CePath path)
    {
        using var module = new ChannelEquilibrium(channels, groupSize, pool: pool).On(path);
        CrossCheck(module, file, ScalarType.Float32);
        module.AssertRanOn(path);
    }

    [Fact]
    public void BatchDecorrelation_and_AdaptiveInstanceInverse_in_float32_match_the_reference()
    {
        using (var bd = new BatchDecorrelation(24, groupSize: 16))
            CrossCheck(bd, "bd_c24_g16_halved.safetensors", ScalarType.Float32);
        using (var aii = new AdaptiveInstanceInverse(16))
            CrossCheck(aii, "aii_c16.safetensors", ScalarType.Float32);
    }

    private static void CrossCheck(Module<Tensor, Tensor> module, string file, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var fixture = Fixture.Load(file, dtype);

        fixture.LoadInitialState(module);

        module.train();
        var x = fixture.Input("step1.x").requires_grad_(true);
        var output = module.call(x);
        fixture.AssertClose("step1.out", output);
        (output * fixture.Input("step1.grad_out")).sum().backward();
        fixture.AssertClose("step1.grad_x", x.grad);

        var parameters = module.named_parameters().ToList();
        Assert.Equal(fixture.NamesUnder("step1.grad."), parameters.Select(p => p.name).Order());
        foreach (var (name, parameter) in parameters)
            fixture.AssertClose($"step1.grad.{name}", parameter.grad);

        using (no_grad())
        {
            module.call(fixture.Input("step2.x"));
            module.call(fixture.Input("step3.x"));
        }
        var buffers = module.named_buffers().ToList();
        Assert.Equal(fixture.NamesUnder("after3."), buffers.Select(b => b.name).Order());
        foreach (var (name, buffer) in buffers)
            fixture.AssertClose($"after3.{name}", buffer);

        module.eval();
        using (no_grad())
            fixture.AssertClose("eval.out", module.call(fixture.Input("eval.x")));
    }

    /// <summary>One fixture file (float64 reference values) used at a module dtype.</summary>
    private sealed class Fixture(string file, ScalarType dtype, IReadOnlyDictionary<string, Tensor> reference)
    {
        private const double Float64Tolerance = 1e-6;
        private const double Float32RelativeTolerance = 1e-4;

        public static Fixture Load(string file, ScalarType dtype)
        {
            string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "reference", file);
            Assert.True(File.Exists(path), $"fixture {path} was not copied to the test output");
            var reference = SafeTensors.Load(path);
            Assert.All(reference, entry => Assert.Equal(ScalarType.Float64, entry.Value.dtype));
            return new Fixture(file, dtype, reference);
        }

        /// <summary>A reference tensor at the module's dtype, detached (a fresh leaf).</summary>
        public Tensor Input(string name) => Reference(name).to(dtype).detach();

        public IEnumerable<string> NamesUnder(string prefix) =>
            reference.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..]).Order();

        /// <summary>The init.* tensors must be exactly the module's state dict, by name and shape.</summary>
        public void LoadInitialState(Module module)
        {
            var state = module.state_dict();
            Assert.Equal(NamesUnder("init."), state.Keys.Order());
            using var _ = no_grad();
            foreach (var (name, target) in state)
            {
                var source = Reference($"init.{name}");
                Assert.True(source.shape.SequenceEqual(target.shape),
                    $"{file}: {name} is {Shape(source)} in the fixture, {Shape(target)} in the module");
                Assert.Equal(dtype, target.dtype);
                target.copy_(source);
            }
        }

        public void AssertClose(string name, Tensor? actual)
        {
            if (actual is null)
                Assert.Fail($"{file}: {name} does not exist on the TorchSharp side (no gradient?)");
            var expected = Reference(name);
            Assert.True(expected.shape.SequenceEqual(actual.shape),
                $"{file}: {name} has shape {Shape(actual)}, the reference {Shape(expected)}");
            Assert.Equal(dtype, actual.dtype);
            double tolerance = dtype == ScalarType.Float64
                ? Float64Tolerance
                : Float32RelativeTolerance * expected.abs().max().item<double>();
            double difference = (actual.detach().to(ScalarType.Float64) - expected).abs().max().item<double>();
            Assert.True(difference <= tolerance,
                $"{file} ({dtype}): {name} differs from the PyTorch reference by {difference:E2} (tolerance {tolerance:E1})");
        }

        private Tensor Reference(string name) =>
            reference.TryGetValue(name, out var tensor) ? tensor : throw new KeyNotFoundException($"{file} has no tensor {name}");

        private static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
    }
}
