using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Selective;

/// <summary>What the schedule did to one selective layer after one epoch.</summary>
/// <param name="Epoch">The epoch, counted from 1.</param>
/// <param name="Layer">The layer's dotted name.</param>
/// <param name="Released">Channels dealloc closed.</param>
/// <param name="Copies">Channels realloc re-opened as shifted copies.</param>
/// <param name="OpenChannels">Open input channels afterwards.</param>
/// <param name="InputChannels">All input channels.</param>
public sealed record SelectiveStep(int Epoch, string Layer, int Released, int Copies, long OpenChannels, long InputChannels);

/// <summary>
/// The reference training schedule of selective convolutions (docs/semantics/selective-convolution.md,
/// "The schedule"): after each epoch while epoch &lt; half of the epochs, dealloc then realloc on every
/// <see cref="SelectiveConv2d"/> of the model. realloc's random choices come from a generator seeded
/// by (seed, epoch, layer), so a run resumed from a checkpoint makes the same choices.
/// </summary>
/// <param name="seed">The run's seed.</param>
public sealed class SelectiveSchedule(ulong seed) : IEpochHook
{
    private readonly List<SelectiveStep> _history = [];

    /// <summary>Every step taken so far, in order.</summary>
    public IReadOnlyList<SelectiveStep> History => _history;

    /// <summary>
    /// The reference training's parameter group of the spatial shifts (<see cref="SelectiveConv2d.ShiftParameterName"/>) of every
    /// selective convolution, with their own weight decay <see cref="SelectiveConv2d.ShiftWeightDecay"/>; for
    /// <see cref="TrainingOptions.ParameterGroups"/>.
    /// </summary>
    public static ParameterGroupRule ShiftWeightDecayGroup { get; } = new("*" + SelectiveConv2d.ShiftParameterName,
        (name, _) => name == SelectiveConv2d.ShiftParameterName || name.EndsWith("." + SelectiveConv2d.ShiftParameterName, StringComparison.Ordinal),
        SelectiveConv2d.ShiftWeightDecay);

    /// <summary>Whether the schedule changes the layers after <paramref name="epoch"/> (from 1) of <paramref name="epochs"/>.</summary>
    public static bool Applies(int epoch, int epochs) => epoch - 1 < 0.5 * epochs;

    /// <inheritdoc/>
    public void AfterEpoch(nn.Module<Tensor, Tensor> model, int epoch, int epochs)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!Applies(epoch, epochs)) return;
        int index = 0;
        foreach (var (name, module) in model.named_modules())
        {
            if (module is not SelectiveConv2d layer) continue;
            var released = layer.Dealloc();
            var random = new Random(unchecked((int)(seed * 1_000_003UL + (ulong)epoch * 7_919UL + (ulong)index++)));
            var realloc = layer.Realloc(random);
            _history.Add(new SelectiveStep(epoch, name, released.NewlyClosed.Count, realloc.Copies.Count, layer.OpenChannelCount, layer.InChannels));
        }
    }
}
