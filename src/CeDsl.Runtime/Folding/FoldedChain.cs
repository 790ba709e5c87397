using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Folding;

/// <summary>
/// The folded form of one <c>conv -> norm -> block</c> chain: <c>conv</c>, then the norm if it
/// could not be folded into the convolution, then what remains of the block. Built by
/// <see cref="InferenceFolding.Chain"/>.
/// </summary>
/// <remarks>
/// Children and state-dict names (relative to the chain's own name in the folded network):
/// <list type="table">
/// <item><term><c>conv.weight</c>, <c>conv.bias</c></term><description>The convolution, with the
/// BatchNorm (and a BD-only block) folded in. <c>conv.bias</c> is absent only when nothing was
/// folded into a bias-free convolution.</description></item>
/// <item><term><c>norm.*</c></term><description>A GroupNorm, InstanceNorm2d or LayerNorm kept as
/// it was (its statistics are per sample, so it cannot be folded).</description></item>
/// <item><term><c>bd.weight</c> (C, d, 1, 1)</term><description>A BD-only block after a kept norm:
/// running_wm as a grouped 1x1 convolution without bias.</description></item>
/// <item><term><c>ce.*</c></term><description>A <see cref="FoldedChannelEquilibrium"/>.</description></item>
/// <item><term><c>aii.*</c></term><description>A <see cref="FoldedAdaptiveInstanceInverse"/>.</description></item>
/// <item><term><c>se.*</c></term><description>A <see cref="SqueezeExcitation"/>, unchanged (nothing to fold).</description></item>
/// </list>
/// At most one of <c>bd</c>, <c>ce</c>, <c>aii</c>, <c>se</c> is present. The chain owns its block:
/// a folded CE or AII writes its output over the convolution's (which nothing else reads) instead
/// of allocating another activation.
/// </remarks>
public sealed class FoldedChain : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly nn.Module<Tensor, Tensor>? norm;
    private readonly Conv2d? bd;
    private readonly FoldedChannelEquilibrium? ce;
    private readonly FoldedAdaptiveInstanceInverse? aii;
    private readonly SqueezeExcitation? se;

    /// <summary>
    /// Assembles a folded chain from its parts (for instance empty parts of the right shapes, to load
    /// a saved folded state dict into).
    /// </summary>
    /// <param name="conv">The convolution.</param>
    /// <param name="norm">A kept GroupNorm, InstanceNorm2d or LayerNorm, or null.</param>
    /// <param name="block">A <see cref="FoldedChannelEquilibrium"/>, <see cref="FoldedAdaptiveInstanceInverse"/>,
    /// <see cref="SqueezeExcitation"/>, a bias-free 1x1 <see cref="Conv2d"/> (a BD map after a kept norm), or null.</param>
    /// <exception cref="ArgumentException">A norm or block of another kind.</exception>
    public FoldedChain(Conv2d conv, nn.Module<Tensor, Tensor>? norm = null, nn.Module<Tensor, Tensor>? block = null)
        : base(nameof(FoldedChain))
    {
        ArgumentNullException.ThrowIfNull(conv);
        if (norm is not null && norm is not (GroupNorm or InstanceNorm2d or LayerNorm))
            throw new ArgumentException(
                $"{nameof(FoldedChain)}: a kept norm must be a GroupNorm, InstanceNorm2d or LayerNorm, not {norm.GetType().Name}.", nameof(norm));

        this.conv = conv;
        this.norm = norm;
        switch (block)
        {
            case null: break;
            case FoldedChannelEquilibrium foldedCe: ce = foldedCe; ce.InPlace = true; break;
            case FoldedAdaptiveInstanceInverse foldedAii: aii = foldedAii; aii.InPlace = true; break;
            case SqueezeExcitation squeeze: se = squeeze; break;
            case Conv2d map when map.kernel_size.All(k => k == 1) && map.bias is null: bd = map; break;
            default:
                throw new ArgumentException(
                    $"{nameof(FoldedChain)}: the block must be a {nameof(FoldedChannelEquilibrium)}, {nameof(FoldedAdaptiveInstanceInverse)}, " +
                    $"{nameof(SqueezeExcitation)} or a bias-free 1x1 Conv2d, not {block.GetType().Name}.", nameof(block));
        }
        RegisterComponents();
    }

    /// <summary>The convolution (registered as <c>conv</c>).</summary>
    public Conv2d Conv => conv;

    /// <summary>The kept norm (registered as <c>norm</c>), or null when there was none or it was folded.</summary>
    public nn.Module<Tensor, Tensor>? Norm => norm;

    /// <summary>What follows the norm (registered as <c>bd</c>, <c>ce</c>, <c>aii</c> or <c>se</c>), or null.</summary>
    public nn.Module<Tensor, Tensor>? Block => (nn.Module<Tensor, Tensor>?)bd ?? (nn.Module<Tensor, Tensor>?)ce ?? (nn.Module<Tensor, Tensor>?)aii ?? se;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = conv.call(input);
        if (norm is not null)
            x = norm.call(x);
        if (Block is { } block)
            x = block.call(x);
        return x.MoveToOuterDisposeScope();
    }
}
