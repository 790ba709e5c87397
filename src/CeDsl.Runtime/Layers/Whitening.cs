using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>
/// The batch-decorrelation (BD) math, shared by <see cref="ChannelEquilibrium"/> and
/// <see cref="BatchDecorrelation"/>. Channels are grouped contiguously: for an (N, C, H, W)
/// contiguous tensor, <c>view(N, G, d, H*W)</c> is the grouped layout without any copy, and the
/// block-diagonal map applies as one batched matmul over (N, G).
/// </summary>
internal static class Whitening
{
    /// <summary>
    /// Training statistics of BD for a contiguous input (N, C, H, W): the group means (G, d, 1) and
    /// the whitening matrices wm (G, d, d) after <paramref name="iterations"/> Newton steps, both
    /// differentiable. Sigma = eps*I + (1/M) * Xc Xc^T over the M = N*H*W columns of the group,
    /// centred by the group mean. With <paramref name="pool"/> the covariance is that of the 2x2
    /// max-pooled input but still divided by the unpooled M (the reference does so).
    /// <paramref name="unpooled"/>: the input's moments when the caller has them already.
    /// </summary>
    internal static (Tensor mean, Tensor wm) TrainingStatistics(Tensor input, int groups, int iterations, bool pool,
        double eps, string module, InstanceMoments? unpooled = null)
    {
        long m = input.shape[0] * input.shape[2] * input.shape[3];
        var moments = pool
            ? InstanceMoments.Of(nn.functional.max_pool2d(input, 2, 2), groups, module)
            : unpooled ?? InstanceMoments.Of(input, groups, module);

        var mean = moments.Mean.mean([0]);
        // Xc Xc^T = sum over n of the instance-centred Gram plus H*W times the scatter of the instance means.
        var deviation = moments.Mean - mean;
        var between = deviation.permute(1, 2, 0).matmul(deviation.permute(1, 0, 2));
        var scatter = moments.Gram.sum(dim: 0) + moments.Positions * between;

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
    /// Applies a block-diagonal map to the UNCENTRED contiguous input: <paramref name="map"/> is
    /// (G, d, d), shared by the batch, or (N, G, d, d), one per sample.
    /// </summary>
    internal static Tensor Apply(Tensor map, Tensor input)
    {
        long n = input.shape[0];
        long groups = map.shape[^3], groupSize = map.shape[^1];
        return map.matmul(input.view(n, groups, groupSize, input.shape[2] * input.shape[3])).view(input.shape);
    }
}
