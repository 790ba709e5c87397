using System.Runtime.CompilerServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Platform;

/// <summary>
/// Keeps networks exact and alive on CPUs where libtorch 2.10's oneDNN (its CPU convolution library)
/// is defective; the project's build machine, a VM that shows the guest no CPU cache topology, is one.
/// PyTorch 1.13's older oneDNN on the same machine has neither defect.
/// <list type="bullet">
/// <item><b>Wrong results.</b> Float32 convolutions with a kernel larger than 1x1 and one group whose
/// output channels, or input channels above 16, are not a multiple of 16 ("channel tails") give
/// outputs and gradients off by 10-80 % or NaN. A self-test (a float32 forward and backward pass of
/// two such small convolutions against float64, run once per process) tells whether this process's
/// oneDNN has the defect; if it does and a protected network has such a convolution, oneDNN is turned
/// off for the process: libtorch's own kernels then compute every convolution exactly, more slowly.</item>
/// <item><b>A crash.</b> The backward pass of some 1x1 convolutions with a stride above 1 (ResNet-50's
/// downsample 512 to 1024, stride 2, among them) divides by zero inside oneDNN: the process is killed
/// by SIGFPE, which nothing can catch, and which shapes crash depends on the channels, the feature
/// map and the batch. Such a convolution is exactly a unit-stride 1x1 convolution of the (padded)
/// input subsampled by the stride (every s-th row and column), whose backward pass takes another,
/// sound oneDNN path. Every protected strided 1x1 convolution computes its training passes on the
/// CPU in that form, on every CPU: nothing has to detect the defect (a test would kill the process it
/// protects), the arithmetic is the same, and oneDNN stays on.</item>
/// </list>
/// Where NNPACK cannot initialize on this CPU (the same VMs), <see cref="Protect"/> also turns it off
/// once, so that libtorch does not warn "Could not initialize NNPACK!" before every convolution.
/// Every generated block and network calls <see cref="Protect"/> on itself at the end of its
/// constructor, so the zoo and modules declared with the DSL are protected without a call of yours;
/// call it for a module written by hand (the trainer and the evaluator do).
/// </summary>
public static class OneDnnGuard
{
    private const long Block = 16;
    private static readonly Lazy<double> SelfTestError = new(MeasureSelfTestError);
    private static readonly Lazy<bool> NnpackSettled = new(LibTorchContext.TurnOffNnpackIfUnsupported);
    // Weak sets: a module the guard has seen, a convolution it has made compute the subsampled form.
    private static readonly ConditionalWeakTable<nn.Module, object> Protected = new();
    private static readonly ConditionalWeakTable<Conv2d, object> Subsampled = new();
    private static readonly object Member = new();
    private static readonly object Gate = new();
    private static bool oneDnnTurnedOff;

    /// <summary>Raised once, with an explanation, when <see cref="Protect"/> turns oneDNN off.</summary>
    public static event Action<string>? OneDnnTurnedOff;

    /// <summary>
    /// Whether this process's oneDNN computes convolutions with channel tails exactly: a float32 forward
    /// and backward pass of two small such convolutions agrees with float64 within 1e-4 (measured once per
    /// process, in a few milliseconds).
    /// </summary>
    public static bool OneDnnIsExact => SelfTestError.Value < 1e-4;

    /// <summary>Whether <see cref="Protect"/> has turned oneDNN off for this process.</summary>
    public static bool OneDnnIsOff
    {
        get
        {
            lock (Gate) return oneDnnTurnedOff;
        }
    }

    /// <summary>Whether <paramref name="convolution"/> has channel tails, the shape whose float32 results oneDNN gets wrong (see the class remarks).</summary>
    public static bool HasChannelTail(Convolution convolution)
    {
        ArgumentNullException.ThrowIfNull(convolution);
        if (convolution.groups != 1 || convolution.kernel_size.All(size => size == 1))
            return false;
        return convolution.out_channels % Block != 0 || (convolution.in_channels > Block && convolution.in_channels % Block != 0);
    }

    /// <summary>Whether <paramref name="convolution"/> is a 1x1 convolution with a stride above 1, whose backward pass may crash oneDNN (see the class remarks).</summary>
    public static bool IsStridedPointwise(Convolution convolution)
    {
        ArgumentNullException.ThrowIfNull(convolution);
        return convolution is Conv2d && convolution.kernel_size.All(size => size == 1) && convolution.stride.Any(step => step > 1);
    }

    /// <summary>The paths of the convolutions of <paramref name="module"/> with channel tails.</summary>
    public static IReadOnlyList<string> ChannelTailConvolutions(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return WithItself(module)
            .Where(m => m.Module is Convolution convolution && HasChannelTail(convolution))
            .Select(m => m.Name)
            .ToList();
    }

    /// <summary>Whether <see cref="Protect"/> has been called for <paramref name="module"/> or a module holding it.</summary>
    public static bool IsProtected(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return Protected.TryGetValue(module, out _);
    }

    /// <summary>
    /// Protects <paramref name="module"/> and every module it holds: each strided 1x1 convolution computes its
    /// training passes on the CPU in the subsampled form, and when the module has a convolution with channel
    /// tails and <see cref="OneDnnIsExact"/> is false, oneDNN is turned off for the process. Cheap after the
    /// first call; calling it again (after replacing a submodule, for instance) protects what is new.
    /// </summary>
    /// <exception cref="InvalidOperationException">oneDNN must be turned off but libtorch does not export the switch.</exception>
    public static void Protect(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        _ = NnpackSettled.Value;
        var modules = WithItself(module).ToList();
        foreach (var (_, child) in modules)
        {
            if (child is Conv2d convolution && IsStridedPointwise(convolution))
                Subsample(convolution);
        }
        TurnOffOneDnnIfWrongFor(module);
        foreach (var (_, child) in modules)
            Protected.AddOrUpdate(child, Member);
    }

    // TorchSharp's named_modules leaves out the module itself, which may be the convolution.
    private static IEnumerable<(string Name, nn.Module Module)> WithItself(nn.Module module) =>
        module.named_modules().Prepend((name: module.GetName(), module));

    private static void TurnOffOneDnnIfWrongFor(nn.Module module)
    {
        var tails = ChannelTailConvolutions(module);
        lock (Gate)
        {
            if (oneDnnTurnedOff || tails.Count == 0 || OneDnnIsExact)
                return;
            try
            {
                LibTorchContext.SetOneDnnEnabled(false);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
                throw new InvalidOperationException(
                    $"libtorch's oneDNN convolutions are wrong on this machine (self-test error {SelfTestError.Value:G2}) for " +
                    $"convolutions such as '{tails[0]}', and this libtorch does not let CeDsl turn oneDNN off. Set " +
                    "ONEDNN_MAX_CPU_ISA=SSE41 before starting the process, or use channel counts that are multiples of 16.", e);
            }
            oneDnnTurnedOff = true;
        }
        OneDnnTurnedOff?.Invoke(
            $"libtorch's oneDNN computes some float32 convolutions wrongly on this CPU (self-test error {SelfTestError.Value:G2}), " +
            $"among them {tails.Count} of this network (e.g. '{tails[0]}': channels not a multiple of 16); oneDNN is off " +
            "for this process, so every convolution is exact but slower.");
    }

    /// <summary>Makes <paramref name="convolution"/> compute its training passes on the CPU as a unit-stride convolution of the subsampled input.</summary>
    private static void Subsample(Conv2d convolution)
    {
        lock (Gate)
        {
            if (Subsampled.TryGetValue(convolution, out _))
                return;
            Subsampled.Add(convolution, Member);
        }
        // A forward hook, as TorchSharp's Conv2d is sealed: the module, its state dict and its stride stay what they
        // are, and a pass that no backward pass follows keeps oneDNN's strided kernel, which is sound.
        convolution.register_forward_hook((_, input, output) =>
        {
            if (input.device_type != DeviceType.CPU || !WillBeDifferentiated(convolution, input))
                return null!;
            var result = ConvolveSubsampled(convolution, input);
            output.Dispose();
            return result;
        });
    }

    private static bool WillBeDifferentiated(Conv2d convolution, Tensor input) =>
        is_grad_enabled() && (input.requires_grad || convolution.weight.requires_grad || convolution.bias?.requires_grad == true);

    /// <summary>The strided 1x1 convolution of <paramref name="input"/>, computed as a unit-stride one of every stride-th row and column.</summary>
    internal static Tensor ConvolveSubsampled(Conv2d convolution, Tensor input)
    {
        using var scope = NewDisposeScope();
        var padded = input;
        if (convolution.padding is [var rows, var columns] && (rows != 0 || columns != 0))
        {
            var mode = convolution.padding_mode == PaddingModes.Zeros ? PaddingModes.Constant : convolution.padding_mode;
            padded = nn.functional.pad(input, [columns, columns, rows, rows], mode);
        }
        var sampled = padded[TensorIndex.Ellipsis, TensorIndex.Slice(step: convolution.stride[0]), TensorIndex.Slice(step: convolution.stride[1])];
        return nn.functional.conv2d(sampled, convolution.weight, convolution.bias, groups: convolution.groups).MoveToOuterDisposeScope();
    }

    /// <summary>Largest relative error of float32 against float64 over the outputs and gradients of two convolutions with channel tails.</summary>
    private static double MeasureSelfTestError()
    {
        _ = NnpackSettled.Value; // float64 convolutions ask for NNPACK
        using var scope = NewDisposeScope();
        var generator = new Generator(20260101);
        double worst = 0;
        foreach (var (inChannels, outChannels) in new[] { (24L, 24L), (1L, 24L) })
        {
            var input = randn([2, inChannels, 8, 8], generator: generator);
            var weight = randn([outChannels, inChannels, 3, 3], generator: generator);
            var (output32, inputGradient32, weightGradient32) = ConvolveWithGradients(input, weight);
            var (output64, inputGradient64, weightGradient64) = ConvolveWithGradients(input.to(float64), weight.to(float64));
            worst = new[] { RelativeError(output32, output64), RelativeError(inputGradient32, inputGradient64), RelativeError(weightGradient32, weightGradient64), worst }.Max();
        }
        return worst;
    }

    private static (Tensor Output, Tensor InputGradient, Tensor WeightGradient) ConvolveWithGradients(Tensor input, Tensor weight)
    {
        using var enableGrad = enable_grad();
        var x = input.detach().requires_grad_();
        var w = weight.detach().requires_grad_();
        var output = nn.functional.conv2d(x, w, padding: [1, 1]);
        output.square().sum().backward();
        return (output.detach(), x.grad!, w.grad!);
    }

    private static double RelativeError(Tensor value, Tensor reference)
    {
        double error = (value.to(float64) - reference).abs().max().item<double>() / reference.abs().max().item<double>();
        return double.IsNaN(error) ? double.PositiveInfinity : error;
    }
}
