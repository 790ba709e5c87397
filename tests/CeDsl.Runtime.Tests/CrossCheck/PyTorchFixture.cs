using CeDsl.IO;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.CrossCheck;

/// <summary>
/// One float64 fixture file of a CE, BD or AII module computed in PyTorch (tensor names in
/// Fixtures/reference/README.md), replayed on a TorchSharp module: the initial state loaded by
/// name, a training step with an upstream gradient (output, input gradient, every parameter
/// gradient), two more training forwards (running statistics), an evaluation forward.
/// </summary>
internal sealed class PyTorchFixture
{
    private readonly string file;
    private readonly ScalarType dtype;
    private readonly double float64Tolerance;
    private readonly IReadOnlyDictionary<string, Tensor> reference;
    private readonly ITestOutputHelper? output;

    private PyTorchFixture(string file, ScalarType dtype, double float64Tolerance, IReadOnlyDictionary<string, Tensor> reference,
        IReadOnlyDictionary<string, string> metadata, ITestOutputHelper? output)
    {
        this.file = file;
        this.dtype = dtype;
        this.float64Tolerance = float64Tolerance;
        this.reference = reference;
        Metadata = metadata;
        this.output = output;
    }

    /// <summary>The fixture's <c>__metadata__</c> (constructor arguments, resolved group size, ...).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <param name="folder">Folder under the test output's Fixtures folder.</param>
    /// <param name="file">File name in it.</param>
    /// <param name="dtype">Element type of the module under test; float32 modules get the reference rounded to float32.</param>
    /// <param name="float64Tolerance">Largest max-abs difference allowed in float64 (float32: 1e-4 of the largest reference value).</param>
    /// <param name="output">Where the measured differences are written, if anywhere.</param>
    public static PyTorchFixture Load(string folder, string file, ScalarType dtype, double float64Tolerance, ITestOutputHelper? output = null)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", folder, file);
        Assert.True(File.Exists(path), $"fixture {path} was not copied to the test output");
        var reference = SafeTensors.Load(path);
        Assert.All(reference, entry => Assert.Equal(ScalarType.Float64, entry.Value.dtype));
        return new PyTorchFixture(file, dtype, float64Tolerance, reference, SafeTensors.LoadMetadata(path), output);
    }

    /// <summary>Runs the whole fixture on <paramref name="module"/> and asserts every quantity.</summary>
    public void Replay(Module<Tensor, Tensor> module)
    {
        using var scope = NewDisposeScope();
        LoadInitialState(module);

        module.train();
        var x = Input("step1.x").requires_grad_(true);
        var result = module.call(x);
        AssertClose("step1.out", result);
        (result * Input("step1.grad_out")).sum().backward();
        AssertClose("step1.grad_x", x.grad);

        var parameters = module.named_parameters().ToList();
        Assert.Equal(NamesUnder("step1.grad."), parameters.Select(p => p.name).Order());
        foreach (var (name, parameter) in parameters)
            AssertClose($"step1.grad.{name}", parameter.grad);

        using (no_grad())
        {
            module.call(Input("step2.x"));
            module.call(Input("step3.x"));
        }
        var buffers = module.named_buffers().ToList();
        Assert.Equal(NamesUnder("after3."), buffers.Select(b => b.name).Order());
        foreach (var (name, buffer) in buffers)
            AssertClose($"after3.{name}", buffer);

        module.eval();
        using (no_grad())
            AssertClose("eval.out", module.call(Input("eval.x")));
    }

    /// <summary>A reference tensor at the module's dtype, detached (a fresh leaf).</summary>
    private Tensor Input(string name) => Reference(name).to(dtype).detach();

    private IEnumerable<string> NamesUnder(string prefix) =>
        reference.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..]).Order();

    /// <summary>The init.* tensors must be exactly the module's state dict, by name and shape.</summary>
    private void LoadInitialState(Module module)
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

    private void AssertClose(string name, Tensor? actual)
    {
        if (actual is null)
            Assert.Fail($"{file}: {name} does not exist on the TorchSharp side (no gradient?)");
        var expected = Reference(name);
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{file}: {name} has shape {Shape(actual)}, the reference {Shape(expected)}");
        Assert.Equal(dtype, actual.dtype);
        double scale = expected.abs().max().item<double>();
        double tolerance = dtype == ScalarType.Float64 ? float64Tolerance : 1e-4 * scale;
        double difference = (actual.detach().to(ScalarType.Float64) - expected).abs().max().item<double>();
        output?.WriteLine($"{file} {name}: max abs difference {difference:E2}, relative to the largest value {difference / Math.Max(scale, double.Epsilon):E2}");
        Assert.True(difference <= tolerance,
            $"{file} ({dtype}): {name} differs from the PyTorch result by {difference:E2} (tolerance {tolerance:E1})");
    }

    private Tensor Reference(string name) =>
        reference.TryGetValue(name, out var tensor) ? tensor : throw new KeyNotFoundException($"{file} has no tensor {name}");

    private static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
}
