using CeDsl.Kernels;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Folding;

/// <summary>
/// Inference-only adaptive instance inverse: output = (gate_scale * y)[n, c] * X, where y is the
/// AII gate of the unbiased per-instance variance (the same <c>fc</c> as
/// <see cref="AdaptiveInstanceInverse"/>) and <c>gate_scale</c> is a constant folded from the
/// running statistics: 1 / running_scale for a standalone AII, (1 - lambda) / running_scale for the
/// <c>AR</c> branch of a <see cref="FoldedChannelEquilibrium"/>.
/// </summary>
/// <remarks>
/// State dict: <c>gate_scale</c> [1], <c>fc.0.weight</c> (C/r, C), <c>fc.1.weight</c> and
/// <c>fc.1.bias</c> (C/r), <c>fc.3.weight</c> (C, C/r); the <c>fc</c> names are those of the
/// unfolded module. Training mode changes nothing: there are no running statistics to update.
/// Built by <see cref="InferenceFolding.AdaptiveInstanceInverse"/>; the public constructor makes an empty
/// module of the right shapes to load a folded state dict into.
/// </remarks>
public sealed class FoldedAdaptiveInstanceInverse : Module<Tensor, Tensor>
{
    private const long ChunkBytes = 8L << 20;

    private readonly Tensor gate_scale;
    private readonly Sequential fc;

    /// <param name="channels">C.</param>
    /// <param name="reduction">r of the unfolded module (hidden width C / r).</param>
    /// <param name="inplace">Scale the input in place (as <c>nn.ReLU(inplace: true)</c>) when no gradient
    /// is recorded, instead of allocating the output: for an input nothing else reads, such as a
    /// convolution's output inside a folded network.</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Element type of the state (default: the default dtype, float32).</param>
    public FoldedAdaptiveInstanceInverse(long channels, int reduction = LayerDefaults.Reduction, bool inplace = false, Device? device = null, ScalarType? dtype = null)
        : this(channels, HiddenWidth(channels, reduction), device, dtype)
    {
        InPlace = inplace;
    }

    internal FoldedAdaptiveInstanceInverse(long channels, long hidden, Device? device, ScalarType? dtype)
        : base(nameof(FoldedAdaptiveInstanceInverse))
    {
        Channels = channels;
        gate_scale = ones(1, dtype: dtype ?? get_default_dtype(), device: device).DetachFromDisposeScope();
        fc = Sequential(
            Linear(channels, hidden, hasBias: false, device: device, dtype: dtype),
            LayerNorm(hidden, device: device, dtype: dtype),
            ReLU(),
            Linear(hidden, channels, hasBias: false, device: device, dtype: dtype),
            Sigmoid());
        RegisterComponents();
    }

    /// <summary>C.</summary>
    public long Channels { get; }

    /// <summary>
    /// Whether <see cref="forward"/> scales its input in place (when no gradient is recorded) instead
    /// of allocating the output: the constructor's <c>inplace</c>, or set by the <see cref="FoldedChain"/>
    /// that owns this module.
    /// </summary>
    public bool InPlace { get; internal set; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        string layer = LayerPaths.Describe(this, nameof(FoldedAdaptiveInstanceInverse));
        LayerChecks.Input(input, layer, Channels, gate_scale.dtype, needsInstanceVariance: true);
        var factor = Factor(InstanceVariance(input, layer)).view(input.shape[0], Channels, 1, 1);
        // In place, a handle of its own all the same: callers such as Sequential dispose the input.
        var output = InPlace && CpuKernels.Apply(input, factor) ? input.mul_(factor).alias() : input * factor;
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>(N, C) factor gate_scale * y from the (N, C) instance variance.</summary>
    internal Tensor Factor(Tensor variance) => fc.call(variance) * gate_scale;

    /// <summary>The gate's tensors and gate_scale, for <see cref="CpuKernels"/>.</summary>
    internal CpuKernels.Gate KernelGate()
    {
        var norm = (LayerNorm)fc[1];
        return new CpuKernels.Gate(((Linear)fc[0]).weight!, norm.weight, norm.bias!, norm.eps, ((Linear)fc[3]).weight!, gate_scale.ToDouble());
    }

    /// <summary>
    /// The unbiased variance over H*W of every (sample, channel), (N, C), from values centred by
    /// their instance mean (two passes, as accurate as the unfolded modules' statistics). On the CPU
    /// (float32, float64, no gradient) vectorized, row by row, the second pass while the row is in cache
    /// (<see cref="CpuKernels"/>), allocating nothing of the input's size; elsewhere libtorch's operators, a few MB
    /// of samples at a time (Tensor.var over H, W is not used: its kernel measured about 10 times
    /// slower at N = 32, C = 256, 56x56). Throws (naming <paramref name="module"/>) when the variance
    /// is not finite, i.e. the input holds NaN or infinity.
    /// </summary>
    internal static Tensor InstanceVariance(Tensor input, string module)
    {
        long n = input.shape[0], channels = input.shape[1], positions = input.shape[2] * input.shape[3];
        Tensor variance;
        if (CpuKernels.Apply(input))
        {
            variance = empty(n, channels, dtype: input.dtype);
            CpuKernels.InstanceVariance(input, variance, positions);
        }
        else
        {
            variance = ChunkedVariance(input.reshape(n, channels, positions));
        }
        LayerChecks.RequireFinite(variance, module, VarianceName);
        return variance;
    }

    /// <summary>How errors name the statistic <see cref="InstanceVariance"/> checks.</summary>
    internal const string VarianceName = "the per-instance variance over H*W";

    private static Tensor ChunkedVariance(Tensor flat)
    {
        long n = flat.shape[0], channels = flat.shape[1], positions = flat.shape[2];
        long samplesPerChunk = Math.Max(1, ChunkBytes / (channels * positions * flat.element_size()));
        var pieces = new List<Tensor>();
        for (long start = 0; start < n; start += samplesPerChunk)
        {
            using var chunkScope = NewDisposeScope();
            long count = Math.Min(samplesPerChunk, n - start);
            var chunk = flat.narrow(0, start, count);
            var centred = (chunk - chunk.sum(-1L, keepdim: true) / positions).view(count * channels, 1, positions);
            // Each row's dot product with itself: one kernel, no squared temporary.
            pieces.Add(centred.bmm(centred.transpose(1, 2)).view(count, channels).MoveToOuterDisposeScope());
        }
        return cat(pieces, 0) / (positions - 1);
    }

    private static long HiddenWidth(long channels, int reduction)
    {
        LayerChecks.Channels(channels, nameof(FoldedAdaptiveInstanceInverse));
        LayerChecks.Reduction(channels, reduction, nameof(FoldedAdaptiveInstanceInverse));
        return channels / reduction;
    }
}
