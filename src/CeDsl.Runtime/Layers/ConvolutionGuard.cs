using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>
/// Guards against a defect of libtorch 2.10's oneDNN convolutions seen on some CPUs (among them the
/// AMD EPYC build machine of this project; PyTorch 1.13's older oneDNN on the same machine is exact):
/// float32 convolutions with a kernel larger than 1x1 and one group whose output channels, or input
/// channels above 16, are not a multiple of 16 give outputs and gradients off by 10-80 % or NaN.
/// 1x1, grouped and depthwise convolutions, and channel counts that are multiples of 16 (all the
/// ResNets, VGG and MobileNetV2 of the zoo) are exact. <see cref="Protect"/> checks a network's
/// convolutions and, when one has an affected shape and a self-test shows this process's oneDNN is
/// defective, turns oneDNN off for the process: libtorch's own kernels then compute every convolution
/// exactly, more slowly. The trainer, the evaluator and the cedsl commands call it.
/// </summary>
public static class ConvolutionGuard
{
    private const long Block = 16;
    private static readonly Lazy<double> SelfTestError = new(MeasureSelfTestError);
    private static readonly object Gate = new();
    private static bool oneDnnTurnedOff;

    /// <summary>Raised once, with an explanation, when <see cref="Protect"/> turns oneDNN off.</summary>
    public static event Action<string>? OneDnnTurnedOff;

    /// <summary>
    /// Whether this process's oneDNN computes convolutions of the affected shapes exactly: a float32
    /// forward and backward pass of two small such convolutions agrees with float64 within 1e-4
    /// (measured once per process, in a few milliseconds).
    /// </summary>
    public static bool OneDnnIsExact => SelfTestError.Value < 1e-4;

    /// <summary>Whether <paramref name="convolution"/> has a shape the defect affects (see the class remarks).</summary>
    public static bool HasAffectedShape(Convolution convolution)
    {
        ArgumentNullException.ThrowIfNull(convolution);
        if (convolution.groups != 1 || convolution.kernel_size.All(size => size == 1))
            return false;
        return convolution.out_channels % Block != 0 || (convolution.in_channels > Block && convolution.in_channels % Block != 0);
    }

    /// <summary>The paths of the convolutions of <paramref name="module"/> with an affected shape.</summary>
    public static IReadOnlyList<string> AffectedConvolutions(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        // TorchSharp's named_modules leaves out the module itself, which may be the convolution.
        return module.named_modules().Prepend((name: module.GetName(), module))
            .Where(m => m.module is Convolution convolution && HasAffectedShape(convolution))
            .Select(m => m.name)
            .ToList();
    }

    /// <summary>
    /// Turns oneDNN off for this process when <paramref name="module"/> holds a convolution of an affected
    /// shape and <see cref="OneDnnIsExact"/> is false. Cheap after the first call; safe to call for every network.
    /// </summary>
    /// <returns>True when oneDNN is off, by this call or an earlier one.</returns>
    /// <exception cref="InvalidOperationException">oneDNN must be turned off but libtorch does not export the switch.</exception>
    public static bool Protect(nn.Module module)
    {
        var affected = AffectedConvolutions(module);
        lock (Gate)
        {
            if (oneDnnTurnedOff || affected.Count == 0 || OneDnnIsExact)
                return oneDnnTurnedOff;
            try
            {
                Native.SetUserEnabledMkldnn(Native.GlobalContext(), false);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
                throw new InvalidOperationException(
                    $"libtorch's oneDNN convolutions are wrong on this machine (self-test error {SelfTestError.Value:G2}) for " +
                    $"convolutions such as '{affected[0]}', and this libtorch does not let CeDsl turn oneDNN off. Set " +
                    "ONEDNN_MAX_CPU_ISA=SSE41 before starting the process, or use channel counts that are multiples of 16.", e);
            }
            oneDnnTurnedOff = true;
        }
        OneDnnTurnedOff?.Invoke(
            $"libtorch's oneDNN computes some float32 convolutions wrongly on this CPU (self-test error {SelfTestError.Value:G2}), " +
            $"among them {affected.Count} of this network (e.g. '{affected[0]}': channels not a multiple of 16); oneDNN is off " +
            "for this process, so every convolution is exact but slower.");
        return true;
    }

    /// <summary>Largest relative error of float32 against float64 over the outputs and gradients of two affected convolutions.</summary>
    private static double MeasureSelfTestError()
    {
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

    private static class Native
    {
        // at::globalContext() and at::Context::setUserEnabledMkldnn(bool): what torch.backends.mkldnn.enabled = False
        // calls in PyTorch; TorchSharp does not bind it.
        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
        public static extern IntPtr GlobalContext();

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
        public static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);
    }
}
