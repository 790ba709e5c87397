using CeDsl.IO;
using CeDsl.Layers;
using CeDsl.Platform;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CeDsl.Selective;

/// <summary>
/// Pruning-only export of a <see cref="SelectiveConv2d"/>: a physically smaller BN + conv pair that keeps
/// only the open input channels and computes the same function as the gated layer.
/// </summary>
public static class SelectivePruning
{
    /// <summary>
    /// Builds the smaller layer and reports what it saves for an <paramref name="inputHeight"/> x
    /// <paramref name="inputWidth"/> input. The layer must hold no re-allocated copies (always true when K = 0):
    /// a copy reads a shifted channel, which a plain BN + conv pair cannot express.
    /// </summary>
    public static PrunedLayer Export(SelectiveConv2d layer, long inputHeight, long inputWidth)
    {
        ArgumentNullException.ThrowIfNull(layer);
        long macsBefore = ConvolutionMacs(layer, layer.InChannels, inputHeight, inputWidth);
        var weight = layer.Conv.weight!;
        var pruned = new PrunedSelectiveConv2d(layer.InChannels, layer.OutChannels, layer.KernelSize, layer.Stride, layer.Padding,
            layer.DropoutRate, weight.device, weight.dtype);
        try
        {
            pruned.PruneFrom(layer, "SelectivePruning.Export: ");
        }
        catch
        {
            pruned.Dispose();
            throw;
        }
        pruned.train(layer.training);
        var report = new PruningReport(
            InputChannels: layer.InChannels,
            KeptChannels: pruned.KeptChannels,
            ParametersBefore: CountParameters(layer),
            ParametersAfter: CountParameters(pruned),
            MacsBefore: macsBefore,
            MacsAfter: ConvolutionMacs(layer, pruned.KeptChannels, inputHeight, inputWidth));
        return new PrunedLayer(pruned, report);
    }

    /// <summary>The open input channels of <paramref name="layer"/>, ascending.</summary>
    /// <param name="layer">The trained layer.</param>
    /// <param name="context">Starts the error messages (what was being done, to which module).</param>
    /// <exception cref="InvalidOperationException">The layer holds re-allocated copies or no open channel.</exception>
    internal static long[] KeptChannels(SelectiveConv2d layer, string context)
    {
        string described = $"{context}the SelectiveConv2d({layer.InChannels} -> {layer.OutChannels})";
        if (layer.CopySources().Any(source => source >= 0))
            throw new InvalidOperationException(
                $"{described} holds re-allocated (shifted) channels; only a layer without copies (e.g. K = 0) can be exported as a plain BN + conv.");
        long[] kept = layer.OpenMask().Select((open, i) => (open, index: (long)i)).Where(c => c.open).Select(c => c.index).ToArray();
        if (kept.Length == 0)
            throw new InvalidOperationException($"{described} has no open channel.");
        return kept;
    }

    private static long CountParameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    private static long ConvolutionMacs(SelectiveConv2d layer, long inChannels, long inputHeight, long inputWidth)
    {
        long outputHeight = (inputHeight + 2 * layer.Padding - layer.KernelSize) / layer.Stride + 1;
        long outputWidth = (inputWidth + 2 * layer.Padding - layer.KernelSize) / layer.Stride + 1;
        if (inputHeight < 1 || inputWidth < 1 || outputHeight < 1 || outputWidth < 1)
            throw new ArgumentException(
                $"SelectivePruning.Export: a {inputHeight} x {inputWidth} input gives no output for kernel {layer.KernelSize}, stride {layer.Stride}, padding {layer.Padding}.");
        return layer.OutChannels * inChannels * layer.KernelSize * layer.KernelSize * outputHeight * outputWidth;
    }
}

/// <summary>The exported smaller layer and what it saves.</summary>
public sealed record PrunedLayer(PrunedSelectiveConv2d Module, PruningReport Report);

/// <summary>
/// Savings of a pruning-only export. Parameters are the trainable ones (conv weight, BN weight and bias,
/// and the unused shifts <c>_bias</c> of a K &gt; 0 layer); multiply-accumulates are those of the convolution
/// for one input image (BN, ReLU and the channel gather are not counted).
/// </summary>
public sealed record PruningReport(long InputChannels, long KeptChannels, long ParametersBefore, long ParametersAfter,
    long MacsBefore, long MacsAfter)
{
    /// <summary>Trainable parameters removed.</summary>
    public long ParametersSaved => ParametersBefore - ParametersAfter;
    /// <summary>Convolution multiply-accumulates removed per image.</summary>
    public long MacsSaved => MacsBefore - MacsAfter;
}

/// <summary>
/// <c>x[:, kept] -&gt; BN -&gt; ReLU -&gt; (dropout) -&gt; conv</c>: a <see cref="SelectiveConv2d"/> with its closed
/// channels physically removed. It reads the original I-channel input and keeps the channels listed in
/// the buffer <c>kept</c> (ascending). Built with all channels kept; <see cref="PruneFrom"/> shrinks it to a
/// trained layer's open channels, and the loaders (<see cref="IResizableFromState"/>) to a saved state's.
/// </summary>
public sealed class PrunedSelectiveConv2d : nn.Module<Tensor, Tensor>, IResizableFromState
{
    // Not readonly: replaced (in place in the module's registry) when the kept channels change.
    private BatchNorm2d norm;
    private readonly Dropout? drop;
    private Conv2d conv;
    private Tensor kept;

    /// <summary>Creates the layer with all <paramref name="inChannels"/> channels kept (initial BN and conv state).</summary>
    /// <param name="inChannels">I, the channels of the input.</param>
    /// <param name="outChannels">O, the convolution's outputs.</param>
    /// <param name="kernelSize">Square kernel size.</param>
    /// <param name="stride">Convolution stride.</param>
    /// <param name="padding">Zero padding; defaults to kernelSize / 2.</param>
    /// <param name="dropout">Dropout rate after the ReLU (0 = none).</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Floating-point type of the state (<c>kept</c> and BN's <c>num_batches_tracked</c> stay 64-bit integers).</param>
    public PrunedSelectiveConv2d(long inChannels, long outChannels, long kernelSize, long stride = 1, long? padding = null,
        double dropout = 0, Device? device = null, ScalarType? dtype = null)
        : base(nameof(PrunedSelectiveConv2d))
    {
        Require(inChannels >= 1, $"inChannels must be >= 1, got {inChannels}.");
        Require(outChannels >= 1, $"outChannels must be >= 1, got {outChannels}.");
        Require(kernelSize >= 1, $"kernelSize must be >= 1, got {kernelSize}.");
        Require(stride >= 1, $"stride must be >= 1, got {stride}.");
        Require(padding is null or >= 0, $"padding must be >= 0, got {padding}.");
        Require(dropout is >= 0 and < 1, $"dropout must be in [0, 1), got {dropout}.");
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding ?? kernelSize / 2;
        DropoutRate = dropout;

        norm = nn.BatchNorm2d(inChannels);
        if (dropout > 0)
            drop = nn.Dropout(dropout);
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, stride, Padding, bias: false);
        kept = arange(inChannels, ScalarType.Int64);
        RegisterComponents();

        SelectiveConv2d.MoveAfterBuilding(this, device, dtype);
    }

    /// <summary>Channels of the input this layer reads (the original I).</summary>
    public long InChannels { get; }
    /// <summary>O, the output channels.</summary>
    public long OutChannels { get; }
    /// <summary>Square kernel size.</summary>
    public long KernelSize { get; }
    /// <summary>Convolution stride.</summary>
    public long Stride { get; }
    /// <summary>Zero padding of the convolution.</summary>
    public long Padding { get; }
    /// <summary>Dropout rate after the ReLU.</summary>
    public double DropoutRate { get; }

    /// <summary>Channels kept, i.e. the BN and conv input width.</summary>
    public long KeptChannels => kept.shape[0];

    /// <summary>
    /// Shrinks (or grows) this layer to the open channels of <paramref name="source"/> and copies its BN and
    /// conv state for them, so that this layer computes <paramref name="source"/>'s function in both modes.
    /// </summary>
    /// <param name="source">A trained layer built with this layer's geometry, holding no re-allocated copies (always true when K = 0).</param>
    /// <param name="context">Starts the error messages (what was being done, to which module).</param>
    /// <exception cref="InvalidOperationException">The geometries differ, or the source holds copies or no open channel.</exception>
    public void PruneFrom(SelectiveConv2d source, string context = "")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(context);
        if (source.InChannels != InChannels || source.OutChannels != OutChannels || source.KernelSize != KernelSize
            || source.Stride != Stride || source.Padding != Padding || source.DropoutRate != DropoutRate)
            throw new InvalidOperationException(
                $"{context}the SelectiveConv2d({source.InChannels} -> {source.OutChannels}, k={source.KernelSize}, stride {source.Stride}, padding {source.Padding}, dropout {source.DropoutRate}) " +
                $"does not fit {Describe()} (stride {Stride}, padding {Padding}, dropout {DropoutRate}); the pruned layer must be built with the same arguments.");
        long[] keptChannels = SelectivePruning.KeptChannels(source, context);
        Resize(keptChannels.Length);

        var sourceNorm = source.Norm;
        norm.eps = sourceNorm.eps;
        norm.momentum = sourceNorm.momentum;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = kept.device;
        var index = tensor(keptChannels, device: sourceNorm.weight.device);
        kept.copy_(tensor(keptChannels, device: device));
        norm.weight.copy_(sourceNorm.weight.index_select(0, index));
        norm.bias!.copy_(sourceNorm.bias!.index_select(0, index));
        norm.running_mean!.copy_(sourceNorm.running_mean!.index_select(0, index));
        norm.running_var!.copy_(sourceNorm.running_var!.index_select(0, index));
        norm.num_batches_tracked!.copy_(sourceNorm.num_batches_tracked!);
        conv.weight!.copy_(source.Conv.weight!.index_select(1, index));
    }

    /// <summary>Sizes the layer to the saved <c>kept</c> (checked: 1-D, ascending indices of the I input channels).</summary>
    public StateResize? PlanResize(IReadOnlyDictionary<string, Tensor> state, string name)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!state.TryGetValue(nameof(kept), out var saved))
            return null;
        string key = name.Length == 0 ? nameof(kept) : name + "." + nameof(kept);
        if (saved.dim() != 1 || saved.shape[0] < 1 || saved.shape[0] > InChannels || saved.dtype != ScalarType.Int64)
            throw new InvalidDataException(
                $"'{key}' is [{string.Join(", ", saved.shape)}] {saved.dtype}; {Describe()} needs 1 to {InChannels} Int64 channel indices.");
        long[] indices;
        using (NewDisposeScope())
            indices = saved.cpu().data<long>().ToArray();
        for (int i = 0; i < indices.Length; i++)
        {
            if (indices[i] < 0 || indices[i] >= InChannels || (i > 0 && indices[i] <= indices[i - 1]))
                throw new InvalidDataException(
                    $"'{key}' holds [{string.Join(", ", indices)}]; {Describe()} needs ascending channel indices in [0, {InChannels}).");
        }
        long channels = indices.Length;
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            [nameof(kept)] = [channels],
            ["norm.weight"] = [channels],
            ["norm.bias"] = [channels],
            ["norm.running_mean"] = [channels],
            ["norm.running_var"] = [channels],
            ["norm.num_batches_tracked"] = [],
            ["conv.weight"] = [OutChannels, channels, KernelSize, KernelSize],
        };
        return new StateResize(shapes, () => Resize(channels));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 4 || input.shape[1] != InChannels)
            throw new ArgumentException(
                $"{LayerPaths.Describe(this, Describe())}: expected an N x {InChannels} x H x W input, got [{string.Join(", ", input.shape)}].");
        using var scope = NewDisposeScope();
        var x = F.relu(norm.call(input.index_select(1, kept)));
        if (drop is not null)
            x = drop.call(x);
        return conv.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>Replaces the BN, the conv and <c>kept</c> by ones for <paramref name="channels"/> channels (initial state, same device, type and mode).</summary>
    private void Resize(long channels)
    {
        if (channels == KeptChannels)
            return;
        var device = conv.weight!.device;
        var dtype = conv.weight.dtype;
        var resizedNorm = nn.BatchNorm2d(channels, norm.eps);
        resizedNorm.momentum = norm.momentum;
        var resizedConv = nn.Conv2d(channels, OutChannels, KernelSize, Stride, Padding, bias: false);
        SelectiveConv2d.MoveAfterBuilding(resizedNorm, device, dtype);
        SelectiveConv2d.MoveAfterBuilding(resizedConv, device, dtype);
        resizedNorm.train(training);
        resizedConv.train(training);

        norm.Dispose();
        conv.Dispose();
        kept.Dispose();
        norm = resizedNorm;
        conv = resizedConv;
        kept = arange(channels, ScalarType.Int64, device).DetachFromDisposeScope(); // the loaders resize inside their dispose scopes
        _internal_submodules[nameof(norm)] = norm;
        _internal_submodules[nameof(conv)] = conv;
        ConditionallyRegisterBuffer(nameof(kept), kept);
        // The new convolution needs the protection the old one had (its width may have channel tails, for instance).
        OneDnnGuard.Protect(this);
    }

    private string Describe() => $"PrunedSelectiveConv2d({KeptChannels} of {InChannels} -> {OutChannels}, k={KernelSize})";

    private static void Require(bool condition, string message)
    {
        if (!condition) throw new ArgumentException($"PrunedSelectiveConv2d: {message}");
    }
}
