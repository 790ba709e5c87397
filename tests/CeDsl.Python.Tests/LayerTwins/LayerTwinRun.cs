using System.Text.Json;
using CeDsl.IO;
using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Python.Tests.LayerTwins;

/// <summary>
/// Runs every <see cref="TwinCase"/> on both sides once per test class. For each case the TorchSharp side
/// writes <c>NAME.case.safetensors</c> (the module's initial state as <c>init.*</c>, the inputs, the upstream
/// gradient; metadata: the Python class, its arguments, the element type) and its own results as
/// <c>NAME.dotnet.safetensors</c>; then one run of <c>Scripts/layer_twins.py</c> writes <c>NAME.python.safetensors</c>
/// with the same tensor names. The protocol, on both sides:
/// training mode, <c>step1.out</c> = module(<c>step1.x</c>), loss = sum(out * <c>step1.grad_out</c>), <c>step1.grad_x</c> and
/// <c>step1.grad.PARAM</c>; two more training forwards (<c>step2.x</c>, <c>step3.x</c>, no optimizer step), then every buffer
/// as <c>after3.BUFFER</c>; evaluation mode, <c>eval.out</c> = module(<c>eval.x</c>); for selective cases dealloc
/// with the case's gamma and <c>dealloc.is_open</c>.
/// </summary>
public sealed class LayerTwinRun : IDisposable
{
    public LayerTwinRun()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("cedsl-twins-").FullName;
        foreach (var twin in TwinCase.All)
            Prepare(twin);
        PythonOutput = PythonTorch.RunScript("layer_twins.py", TimeSpan.FromMinutes(10), Directory).Output;
    }

    public string Directory { get; }

    public string PythonOutput { get; }

    public string CasePath(TwinCase twin, string side) => Path.Combine(Directory, $"{twin.Name}.{side}.safetensors");

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    private void Prepare(TwinCase twin)
    {
        using var scope = NewDisposeScope();
        using var module = twin.Create(twin.Type);
        var state = module.state_dict();
        var inputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in state)
            inputs["init." + name] = tensor.detach().clone();
        inputs["eval.x"] = TwinState.NormalizedLikeInput(twin.InputShape, twin.Type, seed: 40);
        if (twin.Trains)
        {
            for (int step = 1; step <= 3; step++)
                inputs[$"step{step}.x"] = TwinState.NormalizedLikeInput(twin.InputShape, twin.Type, seed: step);
            inputs["step1.grad_out"] = TwinState.NormalizedLikeInput(OutputShape(module, inputs["step1.x"]), twin.Type, seed: 10);
        }
        var metadata = new Dictionary<string, string>
        {
            ["class"] = twin.PythonClass,
            ["arguments"] = twin.PythonArguments,
            ["dtype"] = twin.Type == ScalarType.Float64 ? "float64" : "float32",
            ["trains"] = twin.Trains ? "true" : "false",
            ["state"] = DescribeState(state),
        };
        if (twin.DeallocGamma is double gamma)
            metadata["dealloc_gamma"] = gamma.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        SafeTensors.Save(inputs, CasePath(twin, "case"), metadata);
        SafeTensors.Save(Results(twin, module, inputs), CasePath(twin, "dotnet"));
    }

    private static Dictionary<string, Tensor> Results(TwinCase twin, nn.Module<Tensor, Tensor> module, Dictionary<string, Tensor> inputs)
    {
        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        if (twin.Trains)
        {
            module.train();
            var x = inputs["step1.x"].clone().requires_grad_(true);
            var output = module.call(x);
            (output * inputs["step1.grad_out"]).sum().backward();
            results["step1.out"] = output.detach();
            results["step1.grad_x"] = x.grad!.detach().clone();
            foreach (var (name, parameter) in module.named_parameters())
                results["step1.grad." + name] = parameter.grad is { } grad ? grad.detach().clone() : zeros_like(parameter);
            using (no_grad())
            {
                module.call(inputs["step2.x"]);
                module.call(inputs["step3.x"]);
            }
            foreach (var (name, buffer) in module.named_buffers())
                results["after3." + name] = buffer.detach().clone();
        }
        module.eval();
        using (no_grad())
            results["eval.out"] = module.call(inputs["eval.x"]).detach();
        if (twin.DeallocGamma is double gamma && module is SelectiveConv2d selective)
        {
            selective.Gamma = gamma;
            selective.Dealloc();
            results["dealloc.is_open"] = tensor(selective.OpenMask().Select(open => open ? 1.0 : 0.0).ToArray());
        }
        return results;
    }

    /// <summary>The module's output shape for <paramref name="input"/>, from an evaluation-mode forward (which changes no state).</summary>
    private static long[] OutputShape(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool training = module.training;
        module.eval();
        try
        {
            return module.call(input).shape;
        }
        catch (InvalidOperationException)
        {
            // An untrained AII or CE refuses to evaluate; its output has its input's shape.
            return input.shape;
        }
        finally
        {
            module.train(training);
        }
    }

    /// <summary>{name: [dtype, shape]} of a state dict, as JSON, dtype as PyTorch prints it without "torch.".</summary>
    public static string DescribeState(IReadOnlyDictionary<string, Tensor> state) => JsonSerializer.Serialize(
        state.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(kv => kv.Key, kv => new object[] { kv.Value.dtype.ToString().ToLowerInvariant(), kv.Value.shape }));
}
