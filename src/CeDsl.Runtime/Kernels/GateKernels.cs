using System.Numerics;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;
using static CeDsl.Kernels.BlockKernels;

namespace CeDsl.Kernels;

/// <summary>
/// The AII gate y = sigmoid(expand relu(layernorm(reduce v))) of the samples' (C) instance variances,
/// forward for one sample or a batch and backward for a batch, in the element type of the tensors (the
/// arithmetic of libtorch's Linear, LayerNorm, ReLU and Sigmoid).
/// </summary>
internal static unsafe class GateKernels
{
    /// <summary>
    /// The gate's weights: reduce (hidden x C), the LayerNorm's weight, bias and eps (hidden), expand (C x hidden), all row-major.
    /// </summary>
    internal readonly record struct Weights<T>(nint Reduce, nint NormWeight, nint NormBias, double NormEps, nint Expand, long Channels, long Hidden)
        where T : unmanaged;

    /// <summary>
    /// What <see cref="Forward{T}(in Weights{T}, long, T*, T*, T*, Saved{T})"/> keeps of a batch for <see cref="Backward{T}"/>:
    /// per sample the normalized hidden values and the LayerNorm's output before the ReLU (N x hidden each), and its
    /// inverse standard deviation (N).
    /// </summary>
    internal readonly struct Saved<T>(T* normalized, T* affine, T* inverseStd) where T : unmanaged
    {
        public readonly T* Normalized = normalized, Affine = affine, InverseStd = inverseStd;
    }

    /// <summary>
    /// output[c] = scale * y[c] for one sample's <paramref name="variance"/> (C); <paramref name="hidden"/> is
    /// scratch of the hidden width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward<T>(in Weights<T> weights, T* variance, T* output, T scale, T* hidden)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        long channels = weights.Channels, width = weights.Hidden;
        T* reduce = (T*)weights.Reduce, expand = (T*)weights.Expand;
        for (long k = 0; k < width; k++)
            hidden[k] = Dot(reduce + k * channels, variance, channels);
        Normalize(weights, hidden, 1, null, null, null);
        for (long c = 0; c < channels; c++)
            output[c] = scale / (T.One + T.Exp(-Dot(expand + c * width, hidden, width)));
    }

    /// <summary>
    /// y (N x C, into <paramref name="output"/>) for the <paramref name="variance"/> (N x C) of a batch of
    /// <paramref name="samples"/>, keeping what the backward pass needs in <paramref name="saved"/>. The two
    /// products run over the whole batch, so each weight is read once per call rather than once per sample.
    /// <paramref name="scratch"/>: (C + hidden) x N values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward<T>(in Weights<T> weights, long samples, T* variance, T* output, T* scratch, Saved<T> saved)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        long channels = weights.Channels, width = weights.Hidden;
        // Column n of each scratch matrix is sample n: the variances (C x N), then the hidden values (hidden x N);
        // the first is reused for the expand product's output.
        T* columns = scratch, hidden = scratch + channels * samples;
        Transpose(variance, columns, samples, channels);
        nint reduce = (nint)weights.Reduce, expand = (nint)weights.Expand, v = (nint)columns, h = (nint)hidden, y = (nint)output;
        ByRows(width, channels * samples, (first, count) =>
            Multiply((T*)reduce, false, (T*)v, (T*)h, width, channels, samples, T.One, T.Zero, first, count));
        for (long n = 0; n < samples; n++)
            Normalize(weights, hidden + n, samples, saved.Normalized + n * width, saved.Affine + n * width, saved.InverseStd + n);
        ByRows(channels, width * samples, (first, count) =>
        {
            T* z = (T*)v;
            Multiply((T*)expand, false, (T*)h, z, channels, width, samples, T.One, T.Zero, first, count);
            for (long c = first; c < first + count; c++)
                for (long n = 0; n < samples; n++)
                    ((T*)y)[n * channels + c] = T.One / (T.One + T.Exp(-z[c * samples + n]));
        });
    }

    /// <summary>
    /// The LayerNorm and the ReLU of one sample's hidden values (<paramref name="stride"/> apart), in place; where
    /// given, keeps the normalized values, the LayerNorm's output and the inverse standard deviation.
    /// </summary>
    private static void Normalize<T>(in Weights<T> weights, T* hidden, long stride, T* normalizedOut, T* affineOut, T* inverseStdOut)
        where T : unmanaged, INumber<T>, IRootFunctions<T>
    {
        long width = weights.Hidden;
        T* normWeight = (T*)weights.NormWeight, normBias = (T*)weights.NormBias;
        T mean = T.Zero;
        for (long k = 0; k < width; k++)
            mean += hidden[k * stride];
        mean /= T.CreateTruncating(width);
        T spread = T.Zero;
        for (long k = 0; k < width; k++)
            spread += (hidden[k * stride] - mean) * (hidden[k * stride] - mean);
        T inverseStd = T.One / T.Sqrt(spread / T.CreateTruncating(width) + T.CreateChecked(weights.NormEps));
        for (long k = 0; k < width; k++)
        {
            T normalized = (hidden[k * stride] - mean) * inverseStd;
            T affine = normalized * normWeight[k] + normBias[k];
            if (normalizedOut != null)
            {
                normalizedOut[k] = normalized;
                affineOut[k] = affine;
            }
            hidden[k * stride] = T.Max(T.Zero, affine);
        }
        if (inverseStdOut != null)
            *inverseStdOut = inverseStd;
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
    /// <paramref name="body"/>(first, count) over ranges of <paramref name="rows"/> rows (multiples of 8, which
    /// <see cref="BlockKernels.Multiply{T}"/> takes together), in parallel when the work (<paramref name="workPerRow"/>
    /// multiply-adds per row) is worth several threads.
    /// </summary>
    private static void ByRows(long rows, long workPerRow, Action<long, long> body)
    {
        long perItem = Math.Max(8, (rows + 4 * Math.Max(1, get_num_threads()) - 1) / (4 * Math.Max(1, get_num_threads())) / 8 * 8);
        ParallelLoop.For((rows + perItem - 1) / perItem, item => body(item * perItem, Math.Min(perItem, rows - item * perItem)),
            workPerItem: perItem * workPerRow);
    }
}
