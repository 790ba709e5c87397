using CeDsl.Layers;

namespace CeDsl.Architecture;

// CeDsl's own layers, built with the same arguments as their modules (CeDsl.Layers, CeDsl.Folding,
// CeDsl.Selective); what they compute is written in docs/semantics/channel-equilibrium.md and
// docs/semantics/selective-convolution.md.

/// <summary>
/// <see cref="ChannelEquilibrium"/>: CE(X) = lambda BD(X) + (1 - lambda) AII(X) per sample, lambda = sigmoid(<c>x_weight</c>).
/// Built with the arguments of <c>new ChannelEquilibrium(...)</c>.
/// </summary>
/// <param name="Channels">C.</param>
/// <param name="GroupSize">The requested group size; the property holds it after the halving rule (<see cref="GroupSizeRule"/>).</param>
/// <param name="Reduction">r of the AII gate.</param>
/// <param name="Iterations">T, Newton iterations.</param>
/// <param name="Pool">Whether the covariance is that of the 2x2 max-pooled input.</param>
/// <param name="Eps">Added to the covariance diagonal.</param>
/// <param name="Momentum">Of the running statistics (BD's and the AII branch's).</param>
public sealed record ChannelEquilibriumOp(long Channels, int GroupSize = LayerDefaults.GroupSize, int Reduction = LayerDefaults.Reduction,
    int Iterations = LayerDefaults.Iterations, bool Pool = LayerDefaults.Pool, double Eps = LayerDefaults.Eps, double Momentum = LayerDefaults.Momentum) : Operation
{
    /// <summary>d after the halving rule.</summary>
    public int GroupSize { get; init; } = GroupSizeRule.Resolve(Channels, GroupSize);

    /// <summary>G = C / d.</summary>
    public long Groups => Channels / GroupSize;

    /// <summary>The gate's hidden width C / r.</summary>
    public long Hidden => Channels / Reduction;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => LayerOperation.InstanceMap(this, inputs, Channels);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        StateEntry.Parameter("x_weight", 1),
        StateEntry.Buffer("running_mean", Groups, GroupSize, 1),
        StateEntry.Buffer("running_wm", Groups, GroupSize, GroupSize),
        .. LayerOperation.Gate(Channels, Hidden).Select(s => s.Under("AR")),
        StateEntry.Buffer("AR.running_scale", 1),
    ];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) =>
        LayerOperation.Map(output, GroupSize) + LayerOperation.Variance(output) + 2 * Channels * Hidden;
}

/// <summary><see cref="BatchDecorrelation"/>: the BD branch alone, wm X per group of d channels. Built with the arguments of <c>new BatchDecorrelation(...)</c>.</summary>
/// <param name="Channels">C.</param>
/// <param name="GroupSize">The requested group size; the property holds it after the halving rule.</param>
/// <param name="Iterations">T, Newton iterations.</param>
/// <param name="Pool">Whether the covariance is that of the 2x2 max-pooled input.</param>
/// <param name="Eps">Added to the covariance diagonal.</param>
/// <param name="Momentum">Of the running statistics.</param>
public sealed record BatchDecorrelationOp(long Channels, int GroupSize = LayerDefaults.GroupSize, int Iterations = LayerDefaults.Iterations,
    bool Pool = LayerDefaults.Pool, double Eps = LayerDefaults.Eps, double Momentum = LayerDefaults.Momentum) : Operation
{
    /// <summary>d after the halving rule.</summary>
    public int GroupSize { get; init; } = GroupSizeRule.Resolve(Channels, GroupSize);

    /// <summary>G = C / d.</summary>
    public long Groups => Channels / GroupSize;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Map(inputs, Channels);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        StateEntry.Buffer("running_mean", Groups, GroupSize, 1),
        StateEntry.Buffer("running_wm", Groups, GroupSize, GroupSize),
    ];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => LayerOperation.Map(output, GroupSize);
}

/// <summary><see cref="AdaptiveInstanceInverse"/>: the AII branch alone, X y / s per (sample, channel).</summary>
/// <param name="Channels">C.</param>
/// <param name="Reduction">r: the gate's hidden width is C / r.</param>
/// <param name="Momentum">Of running_scale.</param>
public sealed record AdaptiveInstanceInverseOp(long Channels, int Reduction = LayerDefaults.Reduction, double Momentum = LayerDefaults.Momentum) : Operation
{
    /// <summary>The gate's hidden width C / r.</summary>
    public long Hidden => Channels / Reduction;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => LayerOperation.InstanceMap(this, inputs, Channels);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State => [.. LayerOperation.Gate(Channels, Hidden), StateEntry.Buffer("running_scale", 1)];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => LayerOperation.Variance(output) + 2 * Channels * Hidden;
}

/// <summary><see cref="SqueezeExcitation"/>: X sigmoid(fc2(relu(fc1(mean over H, W of X)))), both linear layers with bias.</summary>
/// <param name="Channels">C.</param>
/// <param name="Reduction">r: the hidden width is C / r.</param>
public sealed record SqueezeExcitationOp(long Channels, int Reduction = LayerDefaults.SqueezeExcitationReduction) : Operation
{
    /// <summary>The hidden width C / r.</summary>
    public long Hidden => Channels / Reduction;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => Map(inputs, Channels);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        StateEntry.Parameter("fc.0.weight", Hidden, Channels), StateEntry.Parameter("fc.0.bias", Hidden),
        StateEntry.Parameter("fc.2.weight", Channels, Hidden), StateEntry.Parameter("fc.2.bias", Channels),
    ];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => 2 * Channels * Hidden;
}

/// <summary>
/// <see cref="Folding.FoldedChannelEquilibrium"/>: CE at inference, one map (<c>weight</c> + diag(<c>AR.gate_scale</c> y)) per sample.
/// Built with the arguments of <c>new FoldedChannelEquilibrium(...)</c>.
/// </summary>
/// <param name="Channels">C.</param>
/// <param name="GroupSize">The requested group size; the property holds it after the halving rule.</param>
/// <param name="Reduction">r of the gate.</param>
/// <param name="InPlace">Whether it writes its output over its input (nothing else reads that input).</param>
public sealed record FoldedChannelEquilibriumOp(long Channels, int GroupSize = LayerDefaults.GroupSize, int Reduction = LayerDefaults.Reduction, bool InPlace = false) : Operation
{
    /// <summary>d after the halving rule.</summary>
    public int GroupSize { get; init; } = GroupSizeRule.Resolve(Channels, GroupSize);

    /// <summary>G = C / d.</summary>
    public long Groups => Channels / GroupSize;

    /// <summary>The gate's hidden width C / r.</summary>
    public long Hidden => Channels / Reduction;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => LayerOperation.InstanceMap(this, inputs, Channels);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        StateEntry.Buffer("weight", Groups, GroupSize, GroupSize),
        StateEntry.Buffer("AR.gate_scale", 1),
        .. LayerOperation.Gate(Channels, Hidden).Select(s => s.Under("AR")),
    ];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) =>
        LayerOperation.Map(output, GroupSize) + LayerOperation.Variance(output) + 2 * Channels * Hidden;
}

/// <summary><see cref="Folding.FoldedAdaptiveInstanceInverse"/>: AII at inference, X (<c>gate_scale</c> y) per (sample, channel).</summary>
/// <param name="Channels">C.</param>
/// <param name="Reduction">r of the gate.</param>
/// <param name="InPlace">Whether it scales its input in place.</param>
public sealed record FoldedAdaptiveInstanceInverseOp(long Channels, int Reduction = LayerDefaults.Reduction, bool InPlace = false) : Operation
{
    /// <summary>The gate's hidden width C / r.</summary>
    public long Hidden => Channels / Reduction;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => LayerOperation.InstanceMap(this, inputs, Channels);

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State => [StateEntry.Buffer("gate_scale", 1), .. LayerOperation.Gate(Channels, Hidden)];

    /// <inheritdoc/>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => LayerOperation.Variance(output) + 2 * Channels * Hidden;
}

/// <summary>
/// <see cref="Selective.SelectiveConv2d"/>: shift (re-allocated channels) -&gt; BN (<c>norm</c>) -&gt; ReLU -&gt; dropout -&gt; x * <c>is_open</c> -&gt; conv (<c>conv</c>, no bias).
/// </summary>
/// <param name="InChannels">I, the channels read and gated.</param>
/// <param name="OutChannels">O.</param>
/// <param name="KernelSize">Square kernel size.</param>
/// <param name="Stride">Convolution stride.</param>
/// <param name="Padding">Zero padding of the convolution.</param>
/// <param name="Dropout">Dropout rate after the ReLU (0: none).</param>
/// <param name="Gamma">The dealloc threshold.</param>
/// <param name="K">The realloc candidates (0: pruning only, no shift state).</param>
/// <param name="NMax">The cap on a channel's copies (null: none).</param>
/// <param name="AlignCorners">align_corners of the shifts' grid sampling.</param>
public sealed record SelectiveConv2dOp(long InChannels, long OutChannels, long KernelSize, long Stride = 1, long Padding = 0, double Dropout = 0,
    double Gamma = LayerDefaults.Gamma, int K = LayerDefaults.K, int? NMax = null, bool AlignCorners = LayerDefaults.AlignCorners) : Operation
{
    /// <summary>The eps of its BatchNorm (<c>nn.BatchNorm2d</c>'s).</summary>
    public double NormEps => 1e-5;

    /// <summary>The momentum of its BatchNorm (<c>nn.BatchNorm2d</c>'s).</summary>
    public double NormMomentum => 0.1;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        Positive(KernelSize, nameof(KernelSize), Kind);
        Positive(Stride, nameof(Stride), Kind);
        var input = Map(inputs, InChannels);
        return TensorShape.Map(OutChannels,
            Window(input.Height, KernelSize, Stride, Padding, 1, ceil: false, "kernel"),
            Window(input.Width, KernelSize, Stride, Padding, 1, ceil: false, "kernel"));
    }

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        .. new BatchNorm2dOp(InChannels).State.Select(s => s.Under("norm")),
        StateEntry.Parameter("conv.weight", OutChannels, InChannels, KernelSize, KernelSize),
        StateEntry.Buffer("is_open", InChannels),
        .. K > 0 ? new[] { StateEntry.Index("_ind_ptr", InChannels), StateEntry.Parameter("_bias", InChannels, 2), StateEntry.Buffer("_eye", 2, 3) } : [],
    ];

    /// <summary>As built, every input channel is open.</summary>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => output.Elements * InChannels * KernelSize * KernelSize;
}

/// <summary>
/// <see cref="Selective.PrunedSelectiveConv2d"/>: x[:, <c>kept</c>] -&gt; BN (<c>norm</c>) -&gt; ReLU -&gt; dropout -&gt; conv (<c>conv</c>, no bias).
/// Described as built, with every channel kept; a folded or loaded state dict holds fewer (the length of <c>kept</c>),
/// and the BN and convolution shapes follow it.
/// </summary>
/// <param name="InChannels">I, the channels of the input.</param>
/// <param name="OutChannels">O.</param>
/// <param name="KernelSize">Square kernel size.</param>
/// <param name="Stride">Convolution stride.</param>
/// <param name="Padding">Zero padding of the convolution.</param>
/// <param name="Dropout">Dropout rate after the ReLU (0: none).</param>
public sealed record PrunedSelectiveConv2dOp(long InChannels, long OutChannels, long KernelSize, long Stride = 1, long Padding = 0, double Dropout = 0) : Operation
{
    /// <summary>The eps of its BatchNorm (<c>nn.BatchNorm2d</c>'s).</summary>
    public double NormEps => 1e-5;

    /// <summary>The momentum of its BatchNorm (<c>nn.BatchNorm2d</c>'s).</summary>
    public double NormMomentum => 0.1;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        Positive(KernelSize, nameof(KernelSize), Kind);
        Positive(Stride, nameof(Stride), Kind);
        var input = Map(inputs, InChannels);
        return TensorShape.Map(OutChannels,
            Window(input.Height, KernelSize, Stride, Padding, 1, ceil: false, "kernel"),
            Window(input.Width, KernelSize, Stride, Padding, 1, ceil: false, "kernel"));
    }

    /// <inheritdoc/>
    public override IReadOnlyList<StateEntry> State =>
    [
        .. new BatchNorm2dOp(InChannels).State.Select(s => s.Under("norm")),
        StateEntry.Parameter("conv.weight", OutChannels, InChannels, KernelSize, KernelSize),
        StateEntry.Index("kept", InChannels),
    ];

    /// <summary>As built, every input channel is kept.</summary>
    public override long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => output.Elements * InChannels * KernelSize * KernelSize;
}

/// <summary>What CeDsl's layers share: their gate's state, the instance-variance check, their cost.</summary>
internal static class LayerOperation
{
    /// <summary>The AII gate <c>fc</c>: Linear(C, C/r, no bias), LayerNorm(C/r), ReLU, Linear(C/r, C, no bias), Sigmoid.</summary>
    public static StateEntry[] Gate(long channels, long hidden) =>
    [
        StateEntry.Parameter("fc.0.weight", hidden, channels),
        StateEntry.Parameter("fc.1.weight", hidden),
        StateEntry.Parameter("fc.1.bias", hidden),
        StateEntry.Parameter("fc.3.weight", channels, hidden),
    ];

    /// <summary>A feature map with more than one position: the instance variance over H*W needs two.</summary>
    public static TensorShape InstanceMap(Operation operation, IReadOnlyList<TensorShape> inputs, long channels)
    {
        if (inputs.Count != 1 || !inputs[0].IsMap || inputs[0].Channels != channels)
            throw new ArgumentException($"{operation.Kind} needs one feature map of {channels} channels, got ({string.Join(", ", inputs)}).");
        if (inputs[0].Height * inputs[0].Width < 2)
            throw new ArgumentException($"{operation.Kind}: the instance variance over H*W positions needs a feature map larger than 1x1, got {inputs[0]}.");
        return inputs[0];
    }

    /// <summary>The per-sample block-diagonal map: C d per position.</summary>
    public static long Map(TensorShape output, int groupSize) => output.Elements * groupSize;

    /// <summary>The instance variance: C per position.</summary>
    public static long Variance(TensorShape output) => output.Elements;
}
