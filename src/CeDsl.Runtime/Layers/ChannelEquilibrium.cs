using CeDsl.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Layers;

/// <summary>
/// Channel Equilibrium, exactly as the authors' released implementation computes it:
/// CE(X) = lambda * BD(X) + (1 - lambda) * AII(X) with lambda = Sigmoid(x_weight), initially 0.5.
/// See <see cref="BatchDecorrelation"/> and <see cref="AdaptiveInstanceInverse"/> (the <c>AR</c>
/// submodule) for the branches. Place it after a normalization layer (BN, GN, IN or LN) with its
/// affine transform.
/// </summary>
/// <remarks>
/// Both branches are linear in X per sample, so the output is computed as ONE block-diagonal map
/// per sample, M_n = lambda * wm + diag((1 - lambda) * y_n / s). For contiguous float32 and float64
/// CPU tensors (without the pooled covariance) vectorized kernels compute the forward pass, and its
/// backward pass as one autograd node (src/CeDsl.Runtime/Kernels/README.md); otherwise libtorch's
/// operators, the maps of the batch as one batched matmul. Both give the same numbers.
/// Errors: <see cref="ArgumentException"/> for a wrong rank, channel count or element type,
/// H*W = 1, NaN or infinite values (detected in the per-instance statistics, which every mode
/// computes), and in training an input constant over H*W in every sample and channel (s = 0);
/// <see cref="InvalidOperationException"/> for evaluation before any training step. A rejected
/// call leaves the running statistics unchanged.
/// </remarks>
public sealed class ChannelEquilibrium : Module<Tensor, Tensor>
{
    private readonly Parameter x_weight;
    private readonly Tensor running_mean;
    private readonly Tensor running_wm;
    private readonly AdaptiveInstanceInverse AR;
    private readonly int iterations;
    private readonly bool pool;
    private readonly double eps;
    private readonly double momentum;

    /// <param name="channels">C, the input's channel count.</param>
    /// <param name="groupSize">Requested group size d, halved until it divides C (<see cref="GroupSizeRule"/>);
    /// 16 in the residual blocks, 64 for the ResNet stem.</param>
    /// <param name="reduction">r of the AII gate (hidden width C / r).</param>
    /// <param name="iterations">T, Newton iterations (3 in the reference; not run to convergence).</param>
    /// <param name="pool">Take the covariance of the 2x2 max-pooled input (still divided by the unpooled M).</param>
    /// <param name="eps">Added to the covariance diagonal.</param>
    /// <param name="momentum">m of the running statistics (BD and AII).</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Element type of the state (default: the default dtype, float32).</param>
    public ChannelEquilibrium(long channels, int groupSize = LayerDefaults.GroupSize, int reduction = LayerDefaults.Reduction,
        int iterations = LayerDefaults.Iterations, bool pool = LayerDefaults.Pool, double eps = LayerDefaults.Eps, double momentum = LayerDefaults.Momentum, Device? device = null, ScalarType? dtype = null)
        : base(nameof(ChannelEquilibrium))
    {
        LayerChecks.Channels(channels, nameof(ChannelEquilibrium));
        LayerChecks.Decorrelation(groupSize, iterations, eps, nameof(ChannelEquilibrium));
        LayerChecks.Momentum(momentum, nameof(ChannelEquilibrium));

        Channels = channels;
        GroupSize = GroupSizeRule.Resolve(channels, groupSize);
        Groups = (int)(channels / GroupSize);
        this.iterations = iterations;
        this.pool = pool;
        this.eps = eps;
        this.momentum = momentum;
        var type = dtype ?? get_default_dtype();
        AR = new AdaptiveInstanceInverse(channels, reduction, momentum, device, dtype);
        running_mean = zeros(Groups, GroupSize, 1, dtype: type, device: device);
        running_wm = eye(GroupSize, dtype: type, device: device).repeat(Groups, 1, 1);
        x_weight = Parameter(zeros(1, dtype: type, device: device));
        RegisterComponents();
    }

    /// <summary>C.</summary>
    public long Channels { get; }

    /// <summary>d after the halving rule.</summary>
    public int GroupSize { get; }

    /// <summary>G = C / d.</summary>
    public int Groups { get; }

    /// <summary>
    /// libtorch's operators only, never the CPU kernels: the reference the kernels are tested against, and
    /// the "before" of the benchmarks.
    /// </summary>
    internal bool OperatorsOnly { get; set; }

    /// <summary>Whether the last forward call ran on the CPU kernels.</summary>
    internal bool RanOnKernels { get; private set; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        string layer = LayerPaths.Describe(this, nameof(ChannelEquilibrium));
        LayerChecks.Input(input, layer, Channels, running_wm.dtype,
            needsInstanceVariance: true, pooled: pool && training);
        var x = input.contiguous();
        var kernelModule = OperatorsOnly || pool ? null : KernelModule(layer);
        RanOnKernels = kernelModule is not null && ChannelEquilibriumFunction.Applies(kernelModule, x);
        bool mode = training;
        var output = RanOnKernels
            ? ChannelEquilibriumFunction.Run(kernelModule!, x, mode, recompute: input => Operators(input, mode, updateStatistics: false, layer))
            : Operators(x, mode, updateStatistics: mode, layer);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The output with libtorch's operators (autograd records every step), in training or evaluation
    /// mode; <paramref name="updateStatistics"/>: update the running statistics (training); <paramref name="layer"/>
    /// names the layer in errors.
    /// </summary>
    private Tensor Operators(Tensor x, bool training, bool updateStatistics, string layer)
    {
        var blocks = Whitening.Blocks(x, Groups);
        // Evaluation and pooled training need only the instance variance of the unpooled input.
        var moments = InstanceMoments.Of(blocks, x.shape[0], layer, withScatter: training && !pool);
        if (!training)
            return Mix(running_wm, AR.Factor(moments.Variance, layer, training, updateRunningScale: false), blocks).view(x.shape);

        var (mean, wm) = Whitening.TrainingStatistics(x, moments, Groups, iterations, pool, eps, layer);
        var factor = AR.Factor(moments.Variance, layer, training, updateStatistics);
        if (updateStatistics)
        {
            RunningAverage.Update(running_mean, mean, momentum);
            RunningAverage.Update(running_wm, wm, momentum);
        }
        return Mix(wm, factor, blocks).view(x.shape);
    }

    private ChannelEquilibriumKernels.Module KernelModule(string layer)
    {
        var (reduce, normWeight, normBias, normEps, expand) = AR.GateTensors();
        return new ChannelEquilibriumKernels.Module(layer, Groups, GroupSize, iterations, eps, momentum, AR.Momentum,
            x_weight, reduce, normWeight, normBias, normEps, expand, running_mean, running_wm, AR.RunningScale);
    }

    /// <summary>lambda * (wm @ X) + (1 - lambda) * factor * X, as one map per sample, on the (N*G, d, P) blocks.</summary>
    private Tensor Mix(Tensor wm, Tensor factor, Tensor blocks)
    {
        var lambda = x_weight.sigmoid();
        var perSample = ((1 - lambda) * factor).view(-1, Groups, GroupSize).diag_embed();
        return Whitening.Apply(lambda * wm + perSample, blocks);
    }
}
