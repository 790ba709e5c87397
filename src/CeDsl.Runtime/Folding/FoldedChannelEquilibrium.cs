using CeDsl.Kernels;
using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Folding;

/// <summary>
/// Inference-only Channel Equilibrium: the evaluation-mode output of <see cref="ChannelEquilibrium"/>
/// with every constant folded. Per sample n it applies ONE block-diagonal map
/// M_n = weight + diag(AR.gate_scale * y_n), where weight = lambda * running_wm (G, d, d),
/// AR.gate_scale = (1 - lambda) / running_scale and y_n is the AII gate of the sample's
/// per-instance variance. On the CPU (float32, float64, no gradient) vectorized kernels do the work
/// (<see cref="CpuKernels"/>), one sample at a time when the batch has two samples per thread;
/// elsewhere libtorch's operators, the maps of the whole batch as one batched matmul.
/// No covariance, no Newton iteration, no matrix power: the only statistic of the input is the
/// (N, C) instance variance the gate needs.
/// </summary>
/// <remarks>
/// State dict: <c>weight</c> (G, d, d) and the <see cref="FoldedAdaptiveInstanceInverse"/> as
/// <c>AR</c>: <c>AR.gate_scale</c> [1], <c>AR.fc.0.weight</c>, <c>AR.fc.1.weight</c>,
/// <c>AR.fc.1.bias</c>, <c>AR.fc.3.weight</c> (the gate keeps the unfolded names).
/// Training mode changes nothing. Built by <see cref="InferenceFolding.ChannelEquilibrium"/>; the public
/// constructor makes an empty module of the right shapes to load a folded state dict into.
/// </remarks>
public sealed class FoldedChannelEquilibrium : Module<Tensor, Tensor>
{
    private readonly Tensor weight;
    private readonly FoldedAdaptiveInstanceInverse AR;

    /// <param name="channels">C.</param>
    /// <param name="groupSize">Requested group size d, halved until it divides C, as for <see cref="ChannelEquilibrium"/>.</param>
    /// <param name="reduction">r of the gate (hidden width C / r).</param>
    /// <param name="inplace">Write the output over the input (as <c>nn.ReLU(inplace: true)</c>) when the CPU
    /// kernels apply, instead of allocating it: for an input nothing else reads, such as a convolution's
    /// output inside a folded network.</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Element type of the state (default: the default dtype, float32).</param>
    public FoldedChannelEquilibrium(long channels, int groupSize = LayerDefaults.GroupSize, int reduction = LayerDefaults.Reduction, bool inplace = false, Device? device = null, ScalarType? dtype = null)
        : this(channels, groupSize, new FoldedAdaptiveInstanceInverse(channels, reduction, device: device, dtype: dtype), device, dtype)
    {
        InPlace = inplace;
    }

    internal FoldedChannelEquilibrium(long channels, int groupSize, FoldedAdaptiveInstanceInverse gate, Device? device, ScalarType? dtype)
        : base(nameof(FoldedChannelEquilibrium))
    {
        LayerChecks.Channels(channels, nameof(FoldedChannelEquilibrium));
        Channels = channels;
        GroupSize = GroupSizeRule.Resolve(channels, groupSize);
        Groups = (int)(channels / GroupSize);
        weight = zeros(Groups, GroupSize, GroupSize, dtype: dtype ?? get_default_dtype(), device: device).DetachFromDisposeScope();
        AR = gate;
        RegisterComponents();
    }

    /// <summary>C.</summary>
    public long Channels { get; }

    /// <summary>d after the halving rule.</summary>
    public int GroupSize { get; }

    /// <summary>G = C / d.</summary>
    public int Groups { get; }

    /// <summary>
    /// Whether <see cref="forward"/> writes its output over its input (when the CPU kernels apply)
    /// instead of allocating it: the constructor's <c>inplace</c>, or set by the <see cref="FoldedChain"/>
    /// that owns this module.
    /// </summary>
    public bool InPlace { get; internal set; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        string layer = LayerPaths.Describe(this, nameof(FoldedChannelEquilibrium));
        LayerChecks.Input(input, layer, Channels, weight.dtype, needsInstanceVariance: true);
        var x = input.contiguous();
        long n = x.shape[0];
        Tensor output;
        if (CpuKernels.FusesSamples(n) && AR.KernelGate() is var gate
            && CpuKernels.Apply([x, weight, .. gate.Tensors]))
        {
            output = InPlace ? x : empty_like(x);
            if (!CpuKernels.ChannelEquilibrium(x, output, weight, gate, Groups, GroupSize))
                throw LayerChecks.NotFinite(layer, FoldedAdaptiveInstanceInverse.VarianceName);
        }
        else
        {
            var factor = AR.Factor(FoldedAdaptiveInstanceInverse.InstanceVariance(x, layer));
            if (CpuKernels.Apply(x, factor))
            {
                output = InPlace ? x : empty_like(x);
                CpuKernels.BlockDiagonalMap(x, output, weight, factor, Groups, GroupSize);
            }
            else
            {
                var perSample = weight + factor.view(n, Groups, GroupSize).diag_embed();
                output = perSample.matmul(x.view(n, Groups, GroupSize, x.shape[2] * x.shape[3])).view(x.shape);
            }
        }
        // In place, a handle of its own all the same: callers such as Sequential dispose the input.
        if (ReferenceEquals(output, x))
            output = x.alias();
        return output.MoveToOuterDisposeScope();
    }
}
