using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Layers;

/// <summary>
/// Adaptive instance inverse (AII, the reference's <c>AdaptiveReweight</c>): scales every
/// (sample, channel) by y / s, where y = Sigmoid(Linear(ReLU(LayerNorm(Linear(v))))) is a gate
/// computed from the unbiased per-instance variance v over H*W and s = sqrt(mean of v) in
/// training, the running average of s in evaluation. The paper's AII-ResNet ablation and the
/// <c>AR</c> submodule of <see cref="ChannelEquilibrium"/>.
/// </summary>
/// <remarks>
/// Throws <see cref="InvalidOperationException"/> when evaluated before any training step
/// (running_scale is still 0, the reference would divide by zero), and
/// <see cref="ArgumentException"/> for an input with NaN or infinite values (detected in the
/// per-instance variance) or one that is constant over H*W in every sample and channel (s = 0).
/// </remarks>
public sealed class AdaptiveInstanceInverse : Module<Tensor, Tensor>
{
    private readonly Sequential fc;
    private readonly Tensor running_scale;
    private readonly double momentum;

    /// <param name="channels">C, the input's channel count.</param>
    /// <param name="reduction">r: the gate's hidden width is C / r (at least 1).</param>
    /// <param name="momentum">m of running_scale = (1 - m) * running_scale + m * s.</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Element type of the state (default: the default dtype, float32).</param>
    public AdaptiveInstanceInverse(long channels, int reduction = LayerDefaults.Reduction, double momentum = LayerDefaults.Momentum,
        Device? device = null, ScalarType? dtype = null) : base(nameof(AdaptiveInstanceInverse))
    {
        LayerChecks.Channels(channels, nameof(AdaptiveInstanceInverse));
        LayerChecks.Reduction(channels, reduction, nameof(AdaptiveInstanceInverse));
        LayerChecks.Momentum(momentum, nameof(AdaptiveInstanceInverse));

        Channels = channels;
        Reduction = reduction;
        this.momentum = momentum;
        long hidden = channels / reduction;
        fc = Sequential(
            Linear(channels, hidden, hasBias: false, device: device, dtype: dtype),
            LayerNorm(hidden, device: device, dtype: dtype),
            ReLU(),
            Linear(hidden, channels, hasBias: false, device: device, dtype: dtype),
            Sigmoid());
        running_scale = zeros(1, dtype: dtype ?? get_default_dtype(), device: device);
        RegisterComponents();
    }

    /// <summary>C.</summary>
    public long Channels { get; }

    /// <summary>r.</summary>
    public int Reduction { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        string layer = LayerPaths.Describe(this, nameof(AdaptiveInstanceInverse));
        LayerChecks.Input(input, layer, Channels, running_scale.dtype, needsInstanceVariance: true);
        var x = input.contiguous();
        var blocks = Whitening.Blocks(x, Channels);
        var variance = InstanceMoments.Of(blocks, x.shape[0], layer, withScatter: false).Variance;
        var factor = Factor(variance, layer, training, updateRunningScale: training);
        return ChannelScale.Apply(blocks, factor).view(x.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The per-(sample, channel) factor y / s, (N, C), from the instance variance. In training s is the
    /// batch's, and with <paramref name="updateRunningScale"/> it updates running_scale (after its checks
    /// pass); in evaluation it divides by running_scale and throws before any training step.
    /// </summary>
    internal Tensor Factor(Tensor variance, string module, bool training, bool updateRunningScale)
    {
        var gate = fc.call(variance);
        if (!training)
        {
            CheckedRunningScale(running_scale, module);
            return gate / running_scale;
        }

        var scale = variance.mean().sqrt();
        if (!(scale.ToDouble() > 0))
            throw ZeroScale(module);
        if (updateRunningScale)
            RunningAverage.Update(running_scale, scale, momentum);
        return gate / scale;
    }

    /// <summary>m of running_scale.</summary>
    internal double Momentum => momentum;

    /// <summary>The running average of s, [1].</summary>
    internal Tensor RunningScale => running_scale;

    /// <summary>The gate's tensors, for the CPU kernels.</summary>
    internal (Tensor Reduce, Tensor NormWeight, Tensor NormBias, double NormEps, Tensor Expand) GateTensors()
    {
        var norm = (LayerNorm)fc[1];
        return (((Linear)fc[0]).weight!, norm.weight!, norm.bias!, norm.eps, ((Linear)fc[3]).weight!);
    }

    /// <summary>The error for a training batch whose instance-variance scale s is 0.</summary>
    internal static ArgumentException ZeroScale(string module) =>
        new($"{module}: every sample and channel of the input is constant over H*W, so the instance-variance scale s is 0 " +
            "and y / s would be infinite.", "input");

    /// <summary>running_scale's value for evaluation; throws before any training step (it is still 0).</summary>
    internal static double CheckedRunningScale(Tensor runningScale, string module)
    {
        double scale = runningScale.ToDouble();
        if (!(scale > 0) || double.IsInfinity(scale))
            throw new InvalidOperationException(
                $"{module}: evaluation before any training step: running_scale is {scale}, and the evaluation output divides " +
                "by it. Train at least one step in training mode, or load a state dict with a trained running_scale.");
        return scale;
    }
}
