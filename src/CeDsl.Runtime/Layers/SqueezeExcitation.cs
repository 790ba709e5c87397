using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Layers;

/// <summary>
/// Squeeze-and-Excitation (the paper's SE baseline): X * Sigmoid(fc2(ReLU(fc1(global average pool of X)))),
/// both linear layers with bias. Non-finite input is detected from the pooled means.
/// </summary>
public sealed class SqueezeExcitation : Module<Tensor, Tensor>
{
    private readonly Sequential fc;

    /// <param name="channels">C, the input's channel count.</param>
    /// <param name="reduction">r: the hidden width is C / r (at least 1).</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Element type of the state (default: the default dtype, float32).</param>
    public SqueezeExcitation(long channels, int reduction = LayerDefaults.SqueezeExcitationReduction, Device? device = null, ScalarType? dtype = null)
        : base(nameof(SqueezeExcitation))
    {
        LayerChecks.Channels(channels, nameof(SqueezeExcitation));
        LayerChecks.Reduction(channels, reduction, nameof(SqueezeExcitation));
        Channels = channels;
        Reduction = reduction;
        long hidden = channels / reduction;
        fc = Sequential(
            Linear(channels, hidden, device: device, dtype: dtype),
            ReLU(),
            Linear(hidden, channels, device: device, dtype: dtype),
            Sigmoid());
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
        string layer = LayerPaths.Describe(this, nameof(SqueezeExcitation));
        LayerChecks.Input(input, layer, Channels, parameters().First().dtype);
        var x = input.contiguous();
        var blocks = Whitening.Blocks(x, Channels);
        // Sum, then divide the small result: the backward of a sum is a broadcast view, that of a
        // mean would materialize an activation-sized tensor.
        var squeezed = blocks.sum(-1L).view(x.shape[0], Channels) / (x.shape[2] * x.shape[3]);
        LayerChecks.RequireFinite(squeezed, layer, "the global average pool");
        var gate = fc.call(squeezed);
        return ChannelScale.Apply(blocks, gate).view(x.shape).MoveToOuterDisposeScope();
    }
}
