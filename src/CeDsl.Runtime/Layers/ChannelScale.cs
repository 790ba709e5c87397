using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>Per-(sample, channel) scaling, shared by <see cref="AdaptiveInstanceInverse"/> and <see cref="SqueezeExcitation"/>.</summary>
internal static class ChannelScale
{
    /// <summary>
    /// X[n, c, :] * factor[n, c] on the (N*C, 1, P) <see cref="Whitening.Blocks"/> view of X; returns (N*C, 1, P).
    /// </summary>
    /// <remarks>
    /// When gradients are recorded this is a batched (1 x 1) @ (1 x P) matmul: its backward gets the
    /// factor's gradient as a reduction (dOut X^T), where the broadcast product's backward would first
    /// materialize the activation-sized dOut * X. Without gradients the broadcast product is as fast or
    /// faster (small maps).
    /// </remarks>
    internal static Tensor Apply(Tensor blocks, Tensor factor)
    {
        var perBlock = factor.reshape(-1, 1, 1);
        return is_grad_enabled() && (blocks.requires_grad || factor.requires_grad)
            ? perBlock.bmm(blocks)
            : blocks * perBlock;
    }
}
