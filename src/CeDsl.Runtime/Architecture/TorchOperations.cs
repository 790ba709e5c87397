namespace CeDsl.Architecture;

// TorchSharp's modules, with the arguments of their factories (nn.Conv2d, nn.BatchNorm2d, ...) and
// PyTorch's defaults for the arguments CeDsl never sets.

/// <summary><c>nn.Conv2d</c> with a square kernel and zero padding.</summary>
public sealed record Conv2dOp(long InChannels, long OutChannels, long KernelSize, long Stride = 1, long Padding = 0, long Dilation = 1, long Groups = 1, bool Bias = true) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        Positive(KernelSize, nameof(KernelSize), Kind);
        Positive(Stride, nameof(Stride), Kind);
        Positive(Dilation, nameof(Dilation), Kind);
        Positive(Groups, nameof(Groups), Kind);
        if (InChannels % Groups != 0 || OutChannels % Groups != 0)
            throw new ArgumentException($"{Kind}: {InChannels} input and {OutChannels} output channels are not both divisible by {Groups} groups.");
        var input = Map(inputs, InChannels);
        return TensorShape.Map(OutChannels,
            Window(input.Height, KernelSize, Stride, Padding, Dilation, ceil: false, "kernel"),
            Window(input.Width, KernelSize, Stride, Padding, Dilation, ceil: false, "kernel"));
    }

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State => Bias
        ? [StateEntry.Parameter("weight", OutChannels, InChannels / Groups, KernelSize, KernelSize), StateEntry.Parameter("bias", OutChannels)]
        : [StateEntry.Parameter("weight", OutChannels, InChannels / Groups, KernelSize, KernelSize)];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) =>
        output.Elements * (InChannels / Groups) * KernelSize * KernelSize;
}

/// <summary>The state of a batch normalization over <paramref name="Features"/> channels.</summary>
public abstract record BatchNormOp(long Features, double Eps, double Momentum, bool Affine, bool TrackRunningStats) : Operation
{
    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        .. Affine ? new[] { StateEntry.Parameter("weight", Features), StateEntry.Parameter("bias", Features) } : [],
        .. TrackRunningStats ? new[] { StateEntry.Buffer("running_mean", Features), StateEntry.Buffer("running_var", Features), StateEntry.Index("num_batches_tracked") } : [],
    ];

    /// <inheritdoc/>
    public override long ElementwiseOperations(TensorShape output) => output.Elements;
}

/// <summary><c>nn.BatchNorm2d</c>: per-channel batch normalization of a feature map.</summary>
public sealed record BatchNorm2dOp(long Features, double Eps = 1e-5, double Momentum = 0.1, bool Affine = true, bool TrackRunningStats = true)
    : BatchNormOp(Features, Eps, Momentum, Affine, TrackRunningStats)
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Map(inputs, Features);
}

/// <summary><c>nn.BatchNorm1d</c>: per-feature batch normalization of flattened features.</summary>
public sealed record BatchNorm1dOp(long Features, double Eps = 1e-5, double Momentum = 0.1, bool Affine = true, bool TrackRunningStats = true)
    : BatchNormOp(Features, Eps, Momentum, Affine, TrackRunningStats)
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Flat(inputs, Features);
}

/// <summary><c>nn.GroupNorm</c>: normalization over groups of channels (and H, W) per sample; LN on feature maps is one group.</summary>
public sealed record GroupNormOp(long Groups, long Channels, double Eps = 1e-5, bool Affine = true) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        Positive(Groups, nameof(Groups), Kind);
        if (Channels % Groups != 0)
            throw new ArgumentException($"{Kind}: {Channels} channels are not divisible by {Groups} groups.");
        return Map(inputs, Channels);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State => Affine ? [StateEntry.Parameter("weight", Channels), StateEntry.Parameter("bias", Channels)] : [];

    /// <inheritdoc/>
    public override long ElementwiseOperations(TensorShape output) => output.Elements;
}

/// <summary><c>nn.InstanceNorm2d</c>: per-sample, per-channel normalization over H, W.</summary>
public sealed record InstanceNorm2dOp(long Features, double Eps = 1e-5, double Momentum = 0.1, bool Affine = false, bool TrackRunningStats = false) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Map(inputs, Features);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        .. Affine ? new[] { StateEntry.Parameter("weight", Features), StateEntry.Parameter("bias", Features) } : [],
        .. TrackRunningStats ? new[] { StateEntry.Buffer("running_mean", Features), StateEntry.Buffer("running_var", Features), StateEntry.Index("num_batches_tracked") } : [],
    ];

    /// <inheritdoc/>
    public override long ElementwiseOperations(TensorShape output) => output.Elements;
}

/// <summary><c>nn.LayerNorm</c> over the last dimension of flattened features.</summary>
public sealed record LayerNormOp(long NormalizedShape, double Eps = 1e-5, bool ElementwiseAffine = true, bool Bias = true) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Flat(inputs, NormalizedShape);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State => !ElementwiseAffine ? []
        : Bias ? [StateEntry.Parameter("weight", NormalizedShape), StateEntry.Parameter("bias", NormalizedShape)]
        : [StateEntry.Parameter("weight", NormalizedShape)];

    /// <inheritdoc/>
    public override long ElementwiseOperations(TensorShape output) => output.Elements;
}

/// <summary><c>nn.ReLU</c>.</summary>
public sealed record ReLUOp(bool InPlace = false) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Single(inputs);

    /// <inheritdoc/>
    public override long ElementwiseOperations(TensorShape output) => output.Elements;
}

/// <summary><c>nn.ReLU6</c>: min(max(x, 0), 6).</summary>
public sealed record ReLU6Op(bool InPlace = false) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Single(inputs);

    /// <inheritdoc/>
    public override long ElementwiseOperations(TensorShape output) => output.Elements;
}

/// <summary><c>nn.MaxPool2d</c> over square windows (padding with negative infinity).</summary>
public sealed record MaxPool2dOp(long KernelSize, long Stride, long Padding = 0, long Dilation = 1, bool CeilMode = false) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        Positive(KernelSize, nameof(KernelSize), Kind);
        Positive(Stride, nameof(Stride), Kind);
        var input = Map(inputs);
        return TensorShape.Map(input.Channels,
            Window(input.Height, KernelSize, Stride, Padding, Dilation, CeilMode, "window"),
            Window(input.Width, KernelSize, Stride, Padding, Dilation, CeilMode, "window"));
    }
}

/// <summary><c>nn.AvgPool2d</c> over square windows; with <see cref="CountIncludePad"/> the zero padding counts in the average.</summary>
public sealed record AvgPool2dOp(long KernelSize, long Stride, long Padding = 0, bool CeilMode = false, bool CountIncludePad = true) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        Positive(KernelSize, nameof(KernelSize), Kind);
        Positive(Stride, nameof(Stride), Kind);
        var input = Map(inputs);
        return TensorShape.Map(input.Channels,
            Window(input.Height, KernelSize, Stride, Padding, 1, CeilMode, "window"),
            Window(input.Width, KernelSize, Stride, Padding, 1, CeilMode, "window"));
    }
}

/// <summary><c>nn.AdaptiveAvgPool2d</c> to <see cref="OutputHeight"/> x <see cref="OutputWidth"/> (1 x 1: global average pooling).</summary>
public sealed record AdaptiveAvgPool2dOp(long OutputHeight, long OutputWidth) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => TensorShape.Map(Map(inputs).Channels, OutputHeight, OutputWidth);
}

/// <summary><c>nn.Flatten</c> from <see cref="StartDim"/> (1: after the batch) to <see cref="EndDim"/> (-1: the last).</summary>
public sealed record FlattenOp(long StartDim = 1, long EndDim = -1) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        if (StartDim != 1 || EndDim != -1)
            throw new ArgumentException($"{Kind}: only flattening every dimension after the batch (1 to -1) is described, not {StartDim} to {EndDim}.");
        return TensorShape.Features(Single(inputs).Elements);
    }
}

/// <summary><c>nn.Linear</c> on flattened features: weight (out, in) and, with <see cref="HasBias"/>, bias (out).</summary>
public sealed record LinearOp(long InFeatures, long OutFeatures, bool HasBias = true) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        Flat(inputs, InFeatures);
        return TensorShape.Features(OutFeatures);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State => HasBias
        ? [StateEntry.Parameter("weight", OutFeatures, InFeatures), StateEntry.Parameter("bias", OutFeatures)]
        : [StateEntry.Parameter("weight", OutFeatures, InFeatures)];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => output.Elements * InFeatures;
}

/// <summary><c>nn.Dropout</c>: zeroes elements with probability <see cref="P"/> in training (scaling the others by 1 / (1 - P)), the identity in evaluation.</summary>
public sealed record DropoutOp(double P = 0.5, bool InPlace = false) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Single(inputs);
}
