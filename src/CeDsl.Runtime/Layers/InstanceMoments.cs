using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>
/// Per-instance moments of a contiguous (N, C, H, W) tensor whose channels form G contiguous
/// groups of d, over the P = H*W positions of every (sample, channel):
/// <see cref="Mean"/> (N, G, d); <see cref="SquaredDeviations"/> (N, G, d), the sum of
/// (x - mean)^2; on request <see cref="Scatter"/> (G, d, d), the sum over samples of the
/// instance-centred Gram matrices (X_ng - mean 1^T)(X_ng - mean 1^T)^T. The layers need nothing
/// else: the unbiased instance variance is SquaredDeviations / (P - 1), and a group's
/// batch-centred product is Scatter + P * sum over n of (mean_n - m)(mean_n - m)^T.
/// </summary>
/// <remarks>
/// Values come from explicitly centred data, one chunk of samples at a time in a reused buffer (no
/// activation-sized temporary), as accurate as the reference's centred product. Gradients, when the
/// input requires them, come from the algebraically identical uncentred forms (sum of x x^T minus
/// P mean mean^T), attached as value + (f - f.detach()): the backward pass then costs one batched
/// matmul and a broadcast instead of activation-sized centred copies.
/// </remarks>
internal readonly record struct InstanceMoments(Tensor Mean, Tensor SquaredDeviations, Tensor? Scatter, long Positions)
{
    // About the size of the reused buffer: cheap to allocate, and large enough that the
    // per-chunk call overhead does not matter.
    private const long ChunkBytes = 16L << 20;

    /// <summary>(N, C) unbiased variance over the positions (divisor P - 1).</summary>
    public Tensor Variance => SquaredDeviations.reshape(SquaredDeviations.shape[0], -1) / (Positions - 1);

    /// <summary>
    /// <paramref name="blocks"/>: the input viewed as (N*G, d, P), the one view through which the
    /// caller also applies its output map (see remarks of <see cref="Whitening.Blocks"/>).
    /// <paramref name="withScatter"/>: also compute <see cref="Scatter"/> (d x d per group instead
    /// of the diagonal only). Throws (naming <paramref name="module"/>) when the input holds NaN or
    /// infinite values.
    /// </summary>
    public static InstanceMoments Of(Tensor blocks, long samples, string module, bool withScatter)
    {
        long n = samples, groups = blocks.shape[0] / samples, groupSize = blocks.shape[1], positions = blocks.shape[2];
        // Sum, then divide the small result: the backward of a sum is a broadcast view, that of a
        // mean would materialize an activation-sized tensor.
        var mean = blocks.sum(-1L).view(n, groups, groupSize) / positions;

        // Without the scatter only the diagonal is needed: Gram blocks of one channel each.
        long blockSize = withScatter ? groupSize : 1;
        Tensor squaredDeviations;
        Tensor? scatter = null;
        using (no_grad())
        {
            var gram = CentredGram(blocks.view(n, groups, groupSize, positions), mean, blockSize);
            squaredDeviations = gram.diagonal(0, -2, -1).reshape(n, groups, groupSize);
            if (withScatter)
                scatter = gram.sum(dim: 0);
        }
        // A NaN or infinity anywhere in the input reaches its channel's diagonal and its group's scatter row.
        LayerChecks.RequireFinite(scatter ?? squaredDeviations, module, "the per-instance channel covariance over H*W");

        if (blocks.requires_grad && is_grad_enabled())
        {
            var flat = withScatter ? blocks : blocks.view(-1, 1, positions);
            // half = X Xd^T with Xd detached: its gradient reaches X from one side only, so the
            // forms below double it: 2*diag(half) and half + half^T, both minus their detached value.
            var half = flat.bmm(flat.detach().transpose(1, 2)).view(n, -1, blockSize, blockSize);
            var squares = half.diagonal(0, -2, -1).reshape(n, groups, groupSize);
            var squaresForm = 2 * squares - squares.detach() - positions * mean * mean;
            squaredDeviations = squaredDeviations + (squaresForm - squaresForm.detach());
            if (scatter is not null)
            {
                var summed = half.sum(dim: 0);
                var outer = mean.permute(1, 2, 0).matmul(mean.permute(1, 0, 2));
                var scatterForm = summed + summed.transpose(1, 2) - summed.detach() - positions * outer;
                scatter = scatter + (scatterForm - scatterForm.detach());
            }
        }
        return new InstanceMoments(mean, squaredDeviations, scatter, positions);
    }

    /// <summary>
    /// Gram matrices of the instance-centred values over blocks of <paramref name="blockSize"/>
    /// contiguous channels, (N, C / blockSize, blockSize, blockSize), computed without autograd.
    /// </summary>
    private static Tensor CentredGram(Tensor grouped, Tensor mean, long blockSize)
    {
        long n = grouped.shape[0], groups = grouped.shape[1], groupSize = grouped.shape[2], positions = grouped.shape[3];
        long blocksPerSample = groups * groupSize / blockSize;
        long bytesPerSample = groups * groupSize * positions * grouped.element_size();
        long samplesPerChunk = Math.Clamp(ChunkBytes / bytesPerSample, 1, n);
        var buffer = empty(new[] { samplesPerChunk, groups, groupSize, positions }, grouped.dtype, grouped.device);
        var pieces = new List<Tensor>();
        for (long start = 0; start < n; start += samplesPerChunk)
        {
            using var chunkScope = NewDisposeScope();
            long count = Math.Min(samplesPerChunk, n - start);
            var centred = buffer.narrow(0, 0, count)
                .copy_(grouped.narrow(0, start, count))
                .sub_(mean.narrow(0, start, count).unsqueeze(-1))
                .view(count * blocksPerSample, blockSize, positions);
            pieces.Add(centred.bmm(centred.transpose(1, 2)).MoveToOuterDisposeScope());
        }
        return cat(pieces, 0).view(n, blocksPerSample, blockSize, blockSize);
    }
}
