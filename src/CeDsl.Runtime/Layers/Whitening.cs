using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>
/// The batch-decorrelation (BD) math, shared by <see cref="ChannelEquilibrium"/> and
/// <see cref="BatchDecorrelation"/>. Channels are grouped contiguously: for an (N, C, H, W)
/// contiguous tensor, <c>view(N*G, d, H*W)</c> is the grouped layout without any copy, and the
/// block-diagonal map applies as one batched matmul over the N*G blocks.
/// </summary>
internal static class Whitening
{
    /// <summary>
    /// The (N*G, d, H*W) view of a contiguous (N, C, H, W) input.
    /// </summary>
    /// <remarks>
    /// Take it ONCE per forward and feed every use of the input that needs gradients from it: the
    /// gradients of its users then accumulate in place in one buffer; separate views of the input
    /// each deliver a view of their gradient, and autograd adds those out of place, allocating an
    /// activation-sized tensor per addition.
    /// </remarks>
    internal static Tensor Blocks(Tensor input, long groups) =>
        input.view(input.shape[0] * groups, input.shape[1] / groups, input.shape[2] * input.shape[3]);

    /// <summary>
    /// Training statistics of BD for a contiguous input (N, C, H, W): the group means (G, d, 1) and
    /// the whitening matrices wm (G, d, d) after <paramref name="iterations"/> Newton steps, both
    /// differentiable. Sigma = eps*I + (1/M) * Xc Xc^T over the M = N*H*W columns of the group,
    /// centred by the group mean. <paramref name="moments"/>: the input's moments with the scatter;
    /// with <paramref name="pool"/> they are ignored and the covariance is that of the 2x2
    /// max-pooled input, still divided by the unpooled M (the reference does so).
    /// </summary>
    internal static (Tensor mean, Tensor wm) TrainingStatistics(Tensor input, InstanceMoments? moments, int groups,
        int iterations, bool pool, double eps, string module)
    {
        long n = input.shape[0], m = n * input.shape[2] * input.shape[3];
        if (pool)
            moments = InstanceMoments.Of(Blocks(nn.functional.max_pool2d(input, 2, 2), groups), n, module, withScatter: true);
        var (instanceMean, _, instanceScatter, positions) = moments!.Value;

        var mean = instanceMean.mean([0]);
        // Xc Xc^T = sum over n of the instance-centred Gram plus H*W times the scatter of the instance means.
        var deviation = instanceMean - mean;
        var between = deviation.permute(1, 2, 0).matmul(deviation.permute(1, 0, 2));
        var scatter = instanceScatter! + positions * between;

        var identity = eye(mean.shape[1], dtype: input.dtype, device: input.device);
        var sigma = identity * eps + scatter * (1.0 / m);
        var traceReciprocal = (sigma * identity).sum([1, 2], keepdim: true).reciprocal();
        return (mean.unsqueeze(-1), NewtonIterations(sigma * traceReciprocal, iterations));
    }

    /// <summary>
    /// P0 = I, P(k+1) = 1.5 P(k) - 0.5 P(k)^3 Sigma_N; returns P(T) without the 1/sqrt(trace)
    /// rescaling (IterNorm rescales, CE does not). Converges to Sigma_N^(-1/2) for large T.
    /// </summary>
    internal static Tensor NewtonIterations(Tensor normalizedCovariance, int iterations)
    {
        long groups = normalizedCovariance.shape[0], groupSize = normalizedCovariance.shape[1];
        var p = eye(groupSize, dtype: normalizedCovariance.dtype, device: normalizedCovariance.device)
            .expand(groups, groupSize, groupSize);
        for (int k = 0; k < iterations; k++)
        {
            // Not Tensor.baddbmm: TorchSharp 0.107 passes its operands to libtorch in the wrong order.
            p = 1.5 * p - 0.5 * p.matmul(p).matmul(p).matmul(normalizedCovariance);
        }
        return p;
    }

    /// <summary>
    /// Applies a block-diagonal map to the UNCENTRED input given as its <see cref="Blocks"/> view
    /// (N*G, d, P): <paramref name="map"/> is (G, d, d), shared by the batch, or (N, G, d, d), one
    /// per sample. Returns (N*G, d, P).
    /// </summary>
    internal static Tensor Apply(Tensor map, Tensor blocks)
    {
        long groupSize = map.shape[^1];
        var perBlock = map.dim() == 3
            ? map.expand(blocks.shape[0] / map.shape[0], map.shape[0], groupSize, groupSize).reshape(-1, groupSize, groupSize)
            : map.view(-1, groupSize, groupSize);
        return perBlock.bmm(blocks);
    }
}
