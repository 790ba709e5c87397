using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Layers;

/// <summary>
/// Batch decorrelation (BD) alone, the paper's BD-ResNet ablation: output = wm @ X per group of
/// d contiguous channels, applied to the UNCENTRED input, where wm is the result of T Newton
/// iterations on the trace-normalized group covariance (training) or running_wm (evaluation).
/// </summary>
/// <remarks>
/// Non-finite input is detected in training from the per-instance covariance. Evaluation computes no
/// statistic of the input, so it checks the sum of the output instead (one reduction, no
/// allocation): a NaN or infinity anywhere in the input reaches it through running_wm.
/// </remarks>
public sealed class BatchDecorrelation : Module<Tensor, Tensor>
{
    private readonly Tensor running_mean;
    private readonly Tensor running_wm;
    private readonly int iterations;
    private readonly bool pool;
    private readonly double eps;
    private readonly double momentum;

    /// <param name="channels">C, the input's channel count.</param>
    /// <param name="groupSize">Requested group size d, halved until it divides C (<see cref="GroupSizeRule"/>).</param>
    /// <param name="iterations">T, Newton iterations (3 in the reference; not run to convergence).</param>
    /// <param name="pool">Take the covariance of the 2x2 max-pooled input (still divided by the unpooled M).</param>
    /// <param name="eps">Added to the covariance diagonal.</param>
    /// <param name="momentum">m of the running statistics.</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Element type of the state (default: the default dtype, float32).</param>
    public BatchDecorrelation(long channels, int groupSize = LayerDefaults.GroupSize, int iterations = LayerDefaults.Iterations, bool pool = LayerDefaults.Pool,
        double eps = LayerDefaults.Eps, double momentum = LayerDefaults.Momentum, Device? device = null, ScalarType? dtype = null)
        : base(nameof(BatchDecorrelation))
    {
        LayerChecks.Channels(channels, nameof(BatchDecorrelation));
        LayerChecks.Decorrelation(groupSize, iterations, eps, nameof(BatchDecorrelation));
        LayerChecks.Momentum(momentum, nameof(BatchDecorrelation));

        Channels = channels;
        GroupSize = GroupSizeRule.Resolve(channels, groupSize);
        Groups = (int)(channels / GroupSize);
        this.iterations = iterations;
        this.pool = pool;
        this.eps = eps;
        this.momentum = momentum;
        var type = dtype ?? get_default_dtype();
        running_mean = zeros(Groups, GroupSize, 1, dtype: type, device: device);
        running_wm = eye(GroupSize, dtype: type, device: device).repeat(Groups, 1, 1);
        RegisterComponents();
    }

    /// <summary>C.</summary>
    public long Channels { get; }

    /// <summary>d after the halving rule.</summary>
    public int GroupSize { get; }

    /// <summary>G = C / d.</summary>
    public int Groups { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        string layer = LayerPaths.Describe(this, nameof(BatchDecorrelation));
        LayerChecks.Input(input, layer, Channels, running_wm.dtype, pooled: pool && training);
        var x = input.contiguous();
        var blocks = Whitening.Blocks(x, Groups);
        if (!training)
        {
            var evaluated = Whitening.Apply(running_wm, blocks);
            LayerChecks.RequireFinite(evaluated.sum(), layer, "the sum of the output");
            return evaluated.view(x.shape).MoveToOuterDisposeScope();
        }

        InstanceMoments? moments = pool
            ? null
            : InstanceMoments.Of(blocks, x.shape[0], layer, withScatter: true);
        var (mean, wm) = Whitening.TrainingStatistics(x, moments, Groups, iterations, pool, eps, layer);
        RunningAverage.Update(running_mean, mean, momentum);
        RunningAverage.Update(running_wm, wm, momentum);
        return Whitening.Apply(wm, blocks).view(x.shape).MoveToOuterDisposeScope();
    }
}
