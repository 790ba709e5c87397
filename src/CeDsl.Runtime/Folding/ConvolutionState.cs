using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Folding;

/// <summary>
/// A convolution's weight (C_out, C_in / groups, kh, kw), bias (C_out) or null, and group count,
/// in float64 while affine maps are folded into it. Owns its tensors.
/// </summary>
internal sealed class ConvolutionState : IDisposable
{
    private ConvolutionState(Tensor weight, Tensor? bias, long groups)
    {
        Weight = weight.DetachFromDisposeScope();
        Bias = bias?.DetachFromDisposeScope();
        Groups = groups;
    }

    public Tensor Weight { get; }

    public Tensor? Bias { get; }

    public long Groups { get; }

    /// <summary>The state of <paramref name="conv"/>; throws (naming <paramref name="module"/>) when it is not finite.</summary>
    public static ConvolutionState Of(Conv2d conv, string module)
    {
        using var scope = NewDisposeScope();
        return new ConvolutionState(conv.weight.detach().to(float64, copy: true), conv.bias?.detach().to(float64, copy: true), conv.groups)
            .RequireFinite(module);
    }

    /// <summary>
    /// Folds an affine per-output-channel map y = scale * x + shift: w' = w * scale,
    /// b' = shift + b * scale (b = 0 when the convolution has none).
    /// </summary>
    /// <paramref name="module"/>: the module of the map, named when the result is not finite.
    public ConvolutionState ThenPerChannel(Tensor scale, Tensor shift, string module)
    {
        using var scope = NewDisposeScope();
        var weight = Weight * scale.view(-1, 1, 1, 1);
        var bias = Bias is null ? shift.clone() : shift + Bias * scale;
        return new ConvolutionState(weight, bias, Groups).RequireFinite(module);
    }

    /// <summary>
    /// Folds a block-diagonal map over the output channels, <paramref name="map"/> (G, d, d) acting on
    /// contiguous groups of d channels: w'' = map @ w, b'' = map @ b. When a map group spans several
    /// convolution groups, the result has the coarser grouping of <see cref="InferenceFolding.DecorrelatedGroups"/>.
    /// </summary>
    /// <paramref name="module"/>: the module of the map, named when the result is not finite.
    public ConvolutionState ThenBlockDiagonal(Tensor map, string module)
    {
        using var scope = NewDisposeScope();
        long outChannels = Weight.shape[0], mapGroups = map.shape[0], groupSize = map.shape[1];
        long groups = InferenceFolding.DecorrelatedGroups(outChannels, Groups, (int)groupSize);
        var regrouped = Regroup(Weight, Groups, groups);
        var weight = map.matmul(regrouped.reshape(mapGroups, groupSize, -1)).reshape(regrouped.shape);
        var bias = Bias is null ? null : map.matmul(Bias.view(mapGroups, groupSize, 1)).view(outChannels);
        return new ConvolutionState(weight, bias, groups).RequireFinite(module);
    }

    /// <summary>
    /// A new convolution with the geometry of <paramref name="like"/> (kernel, stride, padding,
    /// padding mode, dilation), this state's groups, weight and bias, in <paramref name="like"/>'s
    /// element type and device, in evaluation mode.
    /// </summary>
    public Conv2d ToConvolution(Conv2d like)
    {
        var kernel = (like.kernel_size[0], like.kernel_size[1]);
        var stride = (like.stride[0], like.stride[1]);
        var dilation = (like.dilation[0], like.dilation[1]);
        var dtype = like.weight.dtype;
        var device = like.weight.device;
        var conv = like.padding_type is { } paddingType
            ? nn.Conv2d(like.in_channels, like.out_channels, kernel, paddingType, stride, dilation, like.padding_mode,
                Groups, bias: Bias is not null, device: device, dtype: dtype)
            : nn.Conv2d(like.in_channels, like.out_channels, kernel, stride, (like.padding![0], like.padding[1]), dilation,
                like.padding_mode, Groups, bias: Bias is not null, device: device, dtype: dtype);
        using (no_grad())
        {
            conv.weight.copy_(Weight);
            if (Bias is not null)
                conv.bias!.copy_(Bias);
        }
        conv.eval();
        return conv;
    }

    /// <summary>Disposes this state and throws (naming <paramref name="module"/>) unless every value is finite.</summary>
    private ConvolutionState RequireFinite(string module)
    {
        bool finite = Weight.isfinite().all().item<bool>() && (Bias is null || Bias.isfinite().all().item<bool>());
        if (finite)
            return this;
        Dispose();
        throw new InvalidOperationException(
            $"Cannot fold {module}: the folded convolution is not finite; the module's parameters or running statistics " +
            "hold NaN or infinite values.");
    }

    public void Dispose()
    {
        Weight.Dispose();
        Bias?.Dispose();
    }

    /// <summary>
    /// The same convolution written with fewer groups: each new group holds groups / newGroups old
    /// groups side by side, with zero weights between an output channel and the inputs of the
    /// other old groups.
    /// </summary>
    private static Tensor Regroup(Tensor weight, long groups, long newGroups)
    {
        long merged = groups / newGroups;
        if (merged == 1)
            return weight;
        long outChannels = weight.shape[0], inPerGroup = weight.shape[1], kh = weight.shape[2], kw = weight.shape[3];
        var selector = eye(merged, dtype: weight.dtype, device: weight.device).view(1, merged, 1, merged, 1, 1);
        return (weight.view(newGroups, merged, outChannels / groups, 1, inPerGroup, kh * kw) * selector)
            .reshape(outChannels, merged * inPerGroup, kh, kw);
    }
}
