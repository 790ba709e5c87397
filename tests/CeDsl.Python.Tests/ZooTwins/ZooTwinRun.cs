using System.Reflection;
using CeDsl.Architecture;
using CeDsl.Folding;
using CeDsl.IO;
using CeDsl.Networks;
using CeDsl.PyTorch;
using CeDsl.Python.Tests.LayerTwins;
using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Python.Tests.ZooTwins;

/// <summary>A zoo network checked against its exported PyTorch module, at one element type.</summary>
/// <param name="Network">The zoo name.</param>
/// <param name="Type">Float64 or Float32.</param>
public sealed record ZooTwinCase(string Network, ScalarType Type)
{
    /// <summary>
    /// The largest difference allowed, relative to max(1, max |value|): 1e-10 in float64, 1e-5 in float32; a gradient
    /// may also differ by <see cref="ZooTwinTests.SpreadFactor"/> times its measured spread.
    /// </summary>
    public double Tolerance => Type == ScalarType.Float64 ? 1e-10 : 1e-5;

    /// <summary>Names the case's files (a Python module name) and the test.</summary>
    public string Name => Network.Replace('-', '_').Replace('.', '_') + (Type == ScalarType.Float32 ? "_f32" : "");

    public override string ToString() => Name;
}

/// <summary>
/// Exports zoo networks with <see cref="PyTorchExport"/> and runs each on both sides (Scripts/zoo_twins.py, one
/// Python process per group) with the same state and inputs. The TorchSharp side, per case: the network built for
/// 10 classes and 3 input channels, its parameters and running statistics moved off their initial values (selective
/// convolutions with channels released and re-allocated as shifted copies), written as <c>NAME.py</c>; its folded
/// form after the protocol as <c>NAME_folded.py</c>. The protocol is zoo_twins.py's: training mode with dropout
/// off, <c>step1.out</c>, <c>step1.grad_x</c>, <c>step1.grad.PARAM</c>, two more training forwards, <c>after3.BUFFER</c>,
/// <c>eval.out</c>, <c>folded.eval.out</c>. Inputs are the smallest the network takes with more than one position
/// where CE computes an instance variance (<see cref="Side"/>); 4 images.
/// </summary>
public abstract class ZooTwinRun : IDisposable
{
    public const int Batch = 4;
    public const int Classes = 10;
    public const int InChannels = 3;

    protected ZooTwinRun(IEnumerable<ZooTwinCase> cases)
    {
        Cases = [.. cases];
        // The float32 twins keep whatever convolution kernels OneDnnGuard leaves on (tests/Shared/OneDnnGuardAtStartup.cs
        // settles that before any test). A float32 run may still differ by 1e-2 in a gradient: where a ReLU's input lies
        // within rounding of zero, the two sides can round it to opposite signs and the derivative jumps. That is
        // arithmetic, not a defective kernel (cedsl train-step checks every zoo convolution against float64, and
        // NativeBackendTests runs it), and the gradients' measured spread allows for it.
        Directory = System.IO.Directory.CreateTempSubdirectory("cedsl-zoo-twins-").FullName;
        foreach (var twin in Cases)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Prepare(twin);
            PrepareSeconds[twin.Name] = watch.Elapsed.TotalSeconds;
        }
        PythonOutput = PythonTorch.RunScript("zoo_twins.py", TimeSpan.FromMinutes(30), [Directory, .. Cases.Select(c => c.Name)]).Output;
    }

    public IReadOnlyList<ZooTwinCase> Cases { get; }

    public string Directory { get; }

    public string PythonOutput { get; }

    /// <summary>How long the TorchSharp side of each case took (the Python side's times are in <see cref="PythonOutput"/>).</summary>
    public Dictionary<string, double> PrepareSeconds { get; } = [];

    public string PathOf(ZooTwinCase twin, string suffix) => Path.Combine(Directory, twin.Name + suffix);

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    /// <summary>
    /// The input's height and width: small, with at least 2x2 positions where CE and IN compute instance statistics (PyTorch
    /// refuses InstanceNorm on 1x1 in training), and large enough that training-mode float64 gradients are well conditioned:
    /// at 32x32 the ImageNet ResNets' gradients move by up to 9e-10 of their largest value when the input moves by 1e-15 of
    /// its own (CE-ResNet-50 at 64x64: 2.3e-12), so two correct implementations could not agree to 1e-10.
    /// </summary>
    public static long Side(ZooEntry entry) => entry.Family switch
    {
        // VGG-16's classifier takes the 512 features of a 32x32 input only.
        "vgg16-bn" => 32,
        // CIFAR-style networks, stride 8 at most.
        "resnet20" or "resnet18-cifar" or "preresnet29" => 16,
        // ImageNet networks, stride 32.
        _ => 64,
    };

    private void Prepare(ZooTwinCase twin)
    {
        var entry = Zoo.Find(twin.Network);
        long side = Side(entry);
        using var scope = NewDisposeScope();
        // Built in the default type and converted: TorchSharp's norms built with a dtype hold num_batches_tracked in it, not int64.
        using var network = entry.Create(Classes, InChannels);
        network.to(twin.Type);
        Perturb(network);
        var init = PyTorchExportOptions.InitializationOf(entry.Type);
        File.WriteAllText(PathOf(twin, ".py"), PyTorchExport.ToPython(Describe(entry, side), PyTorchExportOptions.For(network, init)));

        var inputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in network.state_dict())
            inputs["init." + name] = tensor.detach().clone();
        long[] shape = [Batch, InChannels, side, side];
        for (int step = 1; step <= 3; step++)
            inputs[$"step{step}.x"] = TwinState.NormalizedLikeInput(shape, twin.Type, seed: step);
        inputs["eval.x"] = TwinState.NormalizedLikeInput(shape, twin.Type, seed: 40);
        inputs["step1.grad_out"] = randn([Batch, Classes], ScalarType.Float64, generator: new Generator(10)).to(twin.Type);
        var metadata = new Dictionary<string, string>
        {
            ["dtype"] = twin.Type == ScalarType.Float64 ? "float64" : "float32",
            ["state"] = LayerTwinRun.DescribeState(network.state_dict()),
        };

        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        network.train();
        foreach (var dropout in network.modules().OfType<TorchSharp.Modules.Dropout>())
            dropout.eval();
        var x = inputs["step1.x"].clone().requires_grad_(true);
        var output = network.call(x);
        (output * inputs["step1.grad_out"]).sum().backward();
        results["step1.out"] = output.detach();
        results["step1.grad_x"] = x.grad!.detach().clone();
        foreach (var (name, parameter) in network.named_parameters())
            results["step1.grad." + name] = parameter.grad is { } grad ? grad.detach().clone() : zeros_like(parameter);
        using (no_grad())
        {
            network.call(inputs["step2.x"]);
            network.call(inputs["step3.x"]);
            foreach (var (name, buffer) in network.named_buffers())
                results["after3." + name] = buffer.detach().clone();
            network.eval();
            results["eval.out"] = network.call(inputs["eval.x"]).detach();

            using var folded = ((IFoldable)network).Fold();
            File.WriteAllText(PathOf(twin, "_folded.py"), PyTorchExport.ToPython(Describe(entry, side, folded: true), PyTorchExportOptions.For(folded, init)));
            foreach (var (name, tensor) in folded.state_dict())
                inputs["folded." + name] = tensor.detach().clone();
            metadata["folded_state"] = LayerTwinRun.DescribeState(folded.state_dict());
            results["folded.eval.out"] = folded.call(inputs["eval.x"]).detach();
        }
        SafeTensors.Save(inputs, PathOf(twin, ".case.safetensors"), metadata);
        SafeTensors.Save(results, PathOf(twin, ".dotnet.safetensors"));
    }

    /// <summary>The network's (or its folded form's) architecture for <see cref="Classes"/>, <see cref="InChannels"/> and a square input of <paramref name="side"/>.</summary>
    private static ModuleArchitecture Describe(ZooEntry entry, long side, bool folded = false) =>
        GeneratedNetwork.Of(entry.Type).Describe(Classes, TensorShape.Map(InChannels, side, side), folded);

    /// <summary>
    /// Every parameter and running statistic off its initial value, so that a state entry the export maps to the wrong
    /// module, or an argument it gets wrong, shows; selective convolutions with released channels and shifted copies.
    /// </summary>
    private static void Perturb(nn.Module network)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        foreach (var selective in network.modules().OfType<SelectiveConv2d>())
        {
            TwinState.Randomize(selective, seed: 5);
            selective.Gamma = 0.2;
            selective.Dealloc();
            selective.Realloc(new Random(7));
        }
        foreach (var (_, parameter) in network.named_parameters())
        {
            // A tenth of a random weight's spread; 0.05 for constant ones (a norm's weight and bias, CE's lambda).
            double spread = parameter.numel() > 1 ? parameter.to(ScalarType.Float64).std().item<double>() : 0;
            parameter.add_(randn(parameter.shape, ScalarType.Float64, generator: generator).to(parameter.dtype) * (spread > 0 ? 0.1 * spread : 0.05));
        }
        foreach (var (name, buffer) in network.named_buffers())
        {
            if (name.EndsWith("running_mean", StringComparison.Ordinal))
                buffer.add_(0.1 * randn(buffer.shape, ScalarType.Float64, generator: generator).to(buffer.dtype));
            else if (name.EndsWith("running_var", StringComparison.Ordinal))
                buffer.mul_(1 + 0.2 * rand(buffer.shape, ScalarType.Float64, generator: generator).to(buffer.dtype));
        }
    }
}

/// <summary>Every zoo network, in groups of one Python process each (xunit runs the groups' test classes side by side).</summary>
public static class ZooTwinGroups
{
    private static ZooTwinCase[] Float64(params string[] networks) => [.. networks.Select(n => new ZooTwinCase(n, ScalarType.Float64))];

    public static readonly ZooTwinCase[] ImageNetResNets = Float64("resnet18", "se-resnet18", "ce-resnet18", "resnet101", "se-resnet101", "ce-resnet101");

    public static readonly ZooTwinCase[] ResNet50s = Float64("resnet50", "se-resnet50", "ce-resnet50", "bd-resnet50", "aii-resnet50");

    /// <summary>
    /// InstanceNorm over layer4's 2x2 positions makes the IN networks' training-mode gradients ill-conditioned at 64x64
    /// (moving the input by 1e-15 of its value moves them by up to 1e-9 of their largest value): their gradients are held
    /// to their measured spread (<see cref="ZooTwinTests"/>). Larger inputs would cost four times as much.
    /// </summary>
    public static readonly ZooTwinCase[] ResNet50Norms = Float64("gn-resnet50", "ce-gn-resnet50", "in-resnet50", "ce-in-resnet50", "ln-resnet50", "ce-ln-resnet50");

    public static readonly ZooTwinCase[] MobileNets = Float64("mobilenetv2", "se-mobilenetv2", "ce-mobilenetv2",
        "shufflenetv2-0.5x", "se-shufflenetv2-0.5x", "ce-shufflenetv2-0.5x", "shufflenetv2-1.0x", "se-shufflenetv2-1.0x", "ce-shufflenetv2-1.0x");

    public static readonly ZooTwinCase[] CifarNetworks =
    [
        .. Float64("vgg16-bn", "se-vgg16-bn", "ce-vgg16-bn", "resnet20", "se-resnet20", "ce-resnet20", "bd-resnet20", "aii-resnet20",
            "resnet18-cifar", "se-resnet18-cifar", "ce-resnet18-cifar", "preresnet29", "sconv-preresnet29", "prune-preresnet29"),
        // float32 where two libtorch versions' float32 sums still agree to 1e-5 through the whole network. Not ShuffleNetV2
        // (64x64): its stem convolution's weight gradient, a sum over 4,096 positions after 17 units, differs by 3.7e-5 of its
        // largest value (7.6e-14 in float64); with CE by 7.9e-3, as far as PyTorch 1.13 with and without oneDNN differ there.
        new("ce-resnet20", ScalarType.Float32),
        new("sconv-preresnet29", ScalarType.Float32),
    ];

    public static IEnumerable<ZooTwinCase> All => [.. ImageNetResNets, .. ResNet50s, .. ResNet50Norms, .. MobileNets, .. CifarNetworks];
}

public sealed class ImageNetResNetTwinRun() : ZooTwinRun(ZooTwinGroups.ImageNetResNets);

public sealed class ResNet50TwinRun() : ZooTwinRun(ZooTwinGroups.ResNet50s);

public sealed class ResNet50NormTwinRun() : ZooTwinRun(ZooTwinGroups.ResNet50Norms);

public sealed class MobileNetTwinRun() : ZooTwinRun(ZooTwinGroups.MobileNets);

public sealed class CifarNetworkTwinRun() : ZooTwinRun(ZooTwinGroups.CifarNetworks);
