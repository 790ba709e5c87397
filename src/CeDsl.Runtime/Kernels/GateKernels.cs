using System.Numerics;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;
using static CeDsl.Kernels.BlockKernels;

namespace CeDsl.Kernels;

/// <summary>
/// The AII gate y = sigmoid(expand relu(layernorm(reduce v))) of one sample's (C) instance variances,
/// forward and backward, in the element type of the tensors (the same arithmetic as libtorch's
/// Linear, LayerNorm, ReLU and Sigmoid, one sample at a time).
/// </summary>
internal static unsafe class GateKernels
{
    /// <summary>
    /// The gate's weights: reduce (hidden x C), the LayerNorm's weight, bias and eps (hidden), expand (C x hidden), all row-major.
    /// </summary>
    internal readonly record struct Weights<T>(nint Reduce, nint NormWeight, nint NormBias, double NormEps, nint Expand, long Channels, long Hidden)
        where T : unmanaged;

    /// <summary>What <see cref="Forward{T}"/> keeps of a sample for <see cref="Backward{T}"/>: (hidden) values each, and one scalar.</summary>
    internal readonly struct Saved<T>(T* normalized, T* affine, T* inverseStd) where T : unmanaged
    {
        public readonly T* Normalized = normalized, Affine = affine, InverseStd = inverseStd;
    }

    /// <summary>
    /// output[c] = scale * y[c] for one sample's <paramref name="variance"/> (C); <paramref name="hidden"/> is
    /// scratch of the hidden width. With <paramref name="saved"/>, also keeps the normalized hidden values,
    /// the LayerNorm's output (before the ReLU) and its inverse standard deviation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward<T>(in Weights<T> weights, T* variance, T* output, T scale, T* hidden, Saved<T>? saved = null)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        long channels = weights.Channels, width = weights.Hidden;
        T* reduce = (T*)weights.Reduce, normWeight = (T*)weights.NormWeight, normBias = (T*)weights.NormBias, expand = (T*)weights.Expand;
        T mean = T.Zero;
        for (long k = 0; k < width; k++)
        {
            hidden[k] = Dot(reduce + k * channels, variance, channels);
            mean += hidden[k];
        }
        mean /= T.CreateTruncating(width);
        T spread = T.Zero;
        for (long k = 0; k < width; k++)
            spread += (hidden[k] - mean) * (hidden[k] - mean);
        T inverseStd = T.One / T.Sqrt(spread / T.CreateTruncating(width) + T.CreateChecked(weights.NormEps));
        for (long k = 0; k < width; k++)
        {
            T normalized = (hidden[k] - mean) * inverseStd;
            T affine = normalized * normWeight[k] + normBias[k];
            if (saved is { } keep)
            {
                keep.Normalized[k] = normalized;
                keep.Affine[k] = affine;
            }
            hidden[k] = T.Max(T.Zero, affine);
        }
        if (saved is { } kept)
            *kept.InverseStd = inverseStd;
        for (long c = 0; c < channels; c++)
            output[c] = scale / (T.One + T.Exp(-Dot(expand + c * width, hidden, width)));
    }

    /// <summary>
    /// Gradients of the gate for a batch of <paramref name="samples"/>: from d loss / d y
    /// (<paramref name="outputGradient"/>, N x C, overwritten) and what the forward kept (<paramref name="output"/>
    /// y, N x C; the saved hidden values, N x hidden each; the inverse standard deviations, N), writes
    /// d loss / d v into <paramref name="varianceGradient"/> (N x C) and the weights' gradients
    /// (same shapes as the weights, overwritten). <paramref name="scratch"/>: 2 x N x hidden values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Backward<T>(in Weights<T> weights, long samples, T* variance, T* output, T* outputGradient,
        T* normalized, T* affine, T* inverseStd, T* varianceGradient,
        T* reduceGradient, T* normWeightGradient, T* normBiasGradient, T* expandGradient, T* scratch)
        where T : unmanaged, INumber<T>
    {
        long channels = weights.Channels, width = weights.Hidden;
        T* reduce = (T*)weights.Reduce, normWeight = (T*)weights.NormWeight, expand = (T*)weights.Expand;
        T* activated = scratch, hiddenGradient = scratch + samples * width;

        // Through the sigmoid: d z = d y * y * (1 - y).
        for (long i = 0; i < samples * channels; i++)
            outputGradient[i] *= output[i] * (T.One - output[i]);
        for (long i = 0; i < samples * width; i++)
        {
            activated[i] = T.Max(T.Zero, affine[i]);
            hiddenGradient[i] = T.Zero;
        }

        // Expand: d W2 = dz^T r (C x hidden), d r = dz W2 (N x hidden).
        nint dz = (nint)outputGradient, r = (nint)activated, dr = (nint)hiddenGradient, w2 = (nint)expand, dw2 = (nint)expandGradient;
        ByRows(channels, samples * width, (first, count) => Multiply((T*)dz, true, (T*)r, (T*)dw2, channels, samples, width, T.One, T.Zero, first, count));
        ByRows(samples, channels * width, (first, count) => Multiply((T*)dz, false, (T*)w2, (T*)dr, samples, channels, width, T.One, T.Zero, first, count));

        // ReLU, the LayerNorm's affine transform, then its normalization.
        new Span<T>(normWeightGradient, (int)width).Clear();
        new Span<T>(normBiasGradient, (int)width).Clear();
        T count = T.CreateTruncating(width);
        for (long n = 0; n < samples; n++)
        {
            T* dHidden = hiddenGradient + n * width, normal = normalized + n * width, before = affine + n * width;
            T meanGradient = T.Zero, meanProjection = T.Zero;
            for (long k = 0; k < width; k++)
            {
                T da = before[k] > T.Zero ? dHidden[k] : T.Zero;
                normWeightGradient[k] += da * normal[k];
                normBiasGradient[k] += da;
                T dNormal = da * normWeight[k];
                dHidden[k] = dNormal;
                meanGradient += dNormal;
                meanProjection += dNormal * normal[k];
            }
            meanGradient /= count;
            meanProjection /= count;
            for (long k = 0; k < width; k++)
                dHidden[k] = inverseStd[n] * (dHidden[k] - meanGradient - normal[k] * meanProjection);
        }

        // Reduce: d W1 = dh^T v (hidden x C), d v = dh W1 (N x C).
        nint v = (nint)variance, dv = (nint)varianceGradient, w1 = (nint)reduce, dw1 = (nint)reduceGradient;
        ByRows(width, samples * channels, (first, count) => Multiply((T*)dr, true, (T*)v, (T*)dw1, width, samples, channels, T.One, T.Zero, first, count));
        ByRows(samples, width * channels, (first, count) => Multiply((T*)dr, false, (T*)w1, (T*)dv, samples, width, channels, T.One, T.Zero, first, count));
    }

    /// <summary>
    /// <paramref name="body"/>(first, count) over ranges of <paramref name="rows"/> rows (multiples of 4), in parallel
    /// when the work (<paramref name="workPerRow"/> multiply-adds per row) is worth several threads.
    /// </summary>
    private static void ByRows(long rows, long workPerRow, Action<long, long> body)
    {
        long perItem = Math.Max(4, (rows + 4 * Math.Max(1, get_num_threads()) - 1) / (4 * Math.Max(1, get_num_threads())) / 4 * 4);
        ParallelLoop.For((rows + perItem - 1) / perItem, item => body(item * perItem, Math.Min(perItem, rows - item * perItem)),
            workPerItem: perItem * workPerRow);
    }
}
