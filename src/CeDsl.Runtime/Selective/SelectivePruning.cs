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
        if (layer.CopySources().Any(source => source >= 0))
            throw new InvalidOperationException(
                $"SelectivePruning.Export: the SelectiveConv2d({layer.InChannels} -> {layer.OutChannels}) holds re-allocated (shifted) channels; only a layer without copies (e.g. K = 0) can be exported as a plain BN + conv.");
        long[] kept = layer.OpenMask().Select((open, i) => (open, index: (long)i)).Where(c => c.open).Select(c => c.index).ToArray();
        if (kept.Length == 0)
            throw new InvalidOperationException(
                $"SelectivePruning.Export: the SelectiveConv2d({layer.InChannels} -> {layer.OutChannels}) has no open channel.");

        var pruned = new PrunedSelectiveConv2d(layer, kept);
        var report = new PruningReport(
            InputChannels: layer.InChannels,
            KeptChannels: kept.Length,
            ParametersBefore: CountParameters(layer),
            ParametersAfter: CountParameters(pruned),
            MacsBefore: ConvolutionMacs(layer, layer.InChannels, inputHeight, inputWidth),
            MacsAfter: ConvolutionMacs(layer, kept.Length, inputHeight, inputWidth));
        return new PrunedLayer(pruned, report);
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
/// the buffer <c>kept</c>.
/// </summary>
public sealed class PrunedSelectiveConv2d : nn.Module<Tensor, Tensor>
{
    private readonly BatchNorm2d norm;
    private readonly Dropout? drop;
    private readonly Conv2d conv;
    private readonly Tensor kept;

    internal PrunedSelectiveConv2d(SelectiveConv2d source, long[] keptChannels) : base(nameof(PrunedSelectiveConv2d))
    {
        InChannels = source.InChannels;
        var sourceNorm = source.Norm;
        var sourceConv = source.Conv;
        var device = sourceConv.weight!.device;
        var dtype = sourceConv.weight.dtype;

        norm = nn.BatchNorm2d(keptChannels.Length, sourceNorm.eps);
        norm.momentum = sourceNorm.momentum;
        if (source.DropoutRate > 0)
            drop = nn.Dropout(source.DropoutRate);
        conv = nn.Conv2d(keptChannels.Length, source.OutChannels, source.KernelSize, source.Stride, source.Padding, bias: false);
        kept = tensor(keptChannels);
        RegisterComponents();
        this.to(device, dtype);

        using var noGrad = no_grad();
        using var index = tensor(keptChannels, device: device);
        norm.weight.copy_(sourceNorm.weight.index_select(0, index));
        norm.bias!.copy_(sourceNorm.bias!.index_select(0, index));
        norm.running_mean!.copy_(sourceNorm.running_mean!.index_select(0, index));
        norm.running_var!.copy_(sourceNorm.running_var!.index_select(0, index));
        norm.num_batches_tracked!.copy_(sourceNorm.num_batches_tracked!);
        conv.weight!.copy_(sourceConv.weight.index_select(1, index));
        if (!source.training)
            eval();
    }

    /// <summary>Channels of the input this layer reads (the original I).</summary>
    public long InChannels { get; }

    /// <summary>Channels kept, i.e. the BN and conv input width.</summary>
    public long KeptChannels => kept.shape[0];

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 4 || input.shape[1] != InChannels)
            throw new ArgumentException(
                $"PrunedSelectiveConv2d({KeptChannels} of {InChannels} channels): expected an N x {InChannels} x H x W input, got [{string.Join(", ", input.shape)}].");
        using var scope = NewDisposeScope();
        var x = F.relu(norm.call(input.index_select(1, kept)));
        if (drop is not null)
            x = drop.call(x);
        return conv.call(x).MoveToOuterDisposeScope();
    }
}
