using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>
/// Per-instance first and second moments of a contiguous (N, C, H, W) tensor with channels in G
/// contiguous groups of d: <see cref="Mean"/> (N, G, d) over the H*W positions and
/// <see cref="Gram"/> (N, G, d, d), the Gram matrix of the instance-centred values
/// (X_ng - mean 1^T)(X_ng - mean 1^T)^T. Everything the layers need follows from these small
/// tensors: the unbiased instance variance is diag(Gram) / (H*W - 1), and the batch covariance of a
/// group is (sum over n of Gram + H*W * sum over n of (mean_n - m)(mean_n - m)^T) / M.
/// </summary>
/// <remarks>
/// Values are computed from explicitly centred data, one chunk of samples at a time (a few MB, so
/// no activation-sized temporary), as accurately as the reference's centred product. Gradients,
/// when the input requires them, come from the algebraically identical uncentred form
/// Gram = X X^T - H*W mean mean^T, attached with value + (f - f.detach()): the backward pass then
/// costs one batched matmul and a broadcast instead of activation-sized centred copies.
/// </remarks>
internal readonly record struct InstanceMoments(Tensor Mean, Tensor Gram, long Positions)
{
    private const long ChunkBytes = 4L << 20;

    /// <summary>(N, C) unbiased variance over H*W (divisor H*W - 1).</summary>
    public Tensor Variance => Gram.diagonal(0, -2, -1).reshape(Gram.shape[0], -1) / (Positions - 1);

    /// <summary>Throws (naming <paramref name="module"/>) when a statistic is not finite.</summary>
    public static InstanceMoments Of(Tensor input, long groups, string module)
    {
        long n = input.shape[0], groupSize = input.shape[1] / groups, positions = input.shape[2] * input.shape[3];
        var grouped = input.view(n, groups, groupSize, positions);
        // Sum, then divide the small result: the backward of a sum is a broadcast view, that of a
        // mean would materialize an activation-sized tensor.
        var mean = grouped.sum(-1L) / positions;

        Tensor gram;
        using (no_grad())
        {
            long samplesPerChunk = Math.Max(1, ChunkBytes / (input.shape[1] * positions * input.element_size()));
            var pieces = new List<Tensor>();
            for (long start = 0; start < n; start += samplesPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                long count = Math.Min(samplesPerChunk, n - start);
                var centred = (grouped.narrow(0, start, count) - mean.narrow(0, start, count).unsqueeze(-1))
                    .view(count * groups, groupSize, positions);
                pieces.Add(centred.bmm(centred.transpose(1, 2)).MoveToOuterDisposeScope());
            }
            gram = cat(pieces, 0).view(n, groups, groupSize, groupSize);
        }
        LayerChecks.RequireFinite(gram, module, "the per-instance channel covariance over H*W");

        if (grouped.requires_grad && is_grad_enabled())
        {
            var flat = grouped.view(n * groups, groupSize, positions);
            var half = flat.bmm(flat.detach().transpose(1, 2)).view(n, groups, groupSize, groupSize);
            // half + half^T - half.detach() has the value X X^T and the gradient of X X^T, (G + G^T) X.
            var uncentred = half + half.transpose(-1, -2) - half.detach()
                            - positions * mean.unsqueeze(-1) * mean.unsqueeze(-2);
            gram = gram + (uncentred - uncentred.detach());
        }
        return new InstanceMoments(mean, gram, positions);
    }
}
