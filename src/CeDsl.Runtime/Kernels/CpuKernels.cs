using System.Numerics;
using TorchSharp;
using static CeDsl.Kernels.BlockKernels;
using static TorchSharp.torch;

namespace CeDsl.Kernels;

/// <summary>
/// The evaluation-mode work of a CE or AII on CPU tensors, written with <see cref="Vector{T}"/> and
/// run on libtorch's threads (<see cref="ParallelLoop"/>): the instance variance, the per-sample
/// block-diagonal map, and both with the gate between them, sample by sample. The folded modules
/// and the unfolded CE in evaluation without gradients use them.
/// libtorch has no operator for either shape of work. Its general ones take 2-4 times as long
/// and allocate activation-sized temporaries, which this VM pays for in page faults
/// (docs/benchmarks/folding.md). <see cref="Apply"/> says which tensors they take; the modules use
/// libtorch's operators for the rest (other devices, other element types).
/// </summary>
internal static unsafe class CpuKernels
{
    /// <summary>
    /// Whether the kernels can take these tensors: contiguous float32 or float64 on the CPU, at most
    /// 2 GB each (what a span addresses), and no gradient to record (the kernels are not autograd
    /// operators).
    /// </summary>
    internal static bool Apply(params Tensor[] tensors) => tensors.All(tensor =>
        Addressable(tensor) && !(tensor.requires_grad && is_grad_enabled()));

    /// <summary>Contiguous float32 or float64 on the CPU, at most 2 GB (what a span addresses).</summary>
    internal static bool Addressable(Tensor tensor) =>
        tensor.device_type == DeviceType.CPU
        && tensor.dtype is ScalarType.Float32 or ScalarType.Float64
        && tensor.is_contiguous()
        && tensor.numel() * tensor.element_size() <= int.MaxValue;

    /// <summary>
    /// The unbiased variance over the last <paramref name="positions"/> elements of every row of
    /// <paramref name="input"/> (N*C rows), into <paramref name="variance"/> (N*C elements). Two passes
    /// per row (mean, then centred squares), so it is as accurate as centring the whole tensor; the row
    /// is still in cache for the second pass.
    /// </summary>
    internal static void InstanceVariance(Tensor input, Tensor variance, long positions)
    {
        if (input.dtype == ScalarType.Float32) InstanceVariance((float*)Address(input), (float*)Address(variance), input.numel() / positions, positions);
        else InstanceVariance((double*)Address(input), (double*)Address(variance), input.numel() / positions, positions);
    }

    /// <summary>
    /// output[n, g*d + i, p] = sum_j (weight[g, i, j] + (i == j ? factor[n, g*d + i] : 0)) * input[n, g*d + j, p]
    /// for input and output (N, G*d, P), weight (G, d, d) and factor (N, G*d). <paramref name="output"/>
    /// may be <paramref name="input"/> itself: each tile of d x 2V positions is copied aside before
    /// any of it is written.
    /// </summary>
    internal static void BlockDiagonalMap(Tensor input, Tensor output, Tensor weight, Tensor factor, int groups, int groupSize)
    {
        long samples = input.shape[0], positions = input.numel() / (samples * input.shape[1]);
        if (input.dtype == ScalarType.Float32)
            BlockDiagonalMap((float*)Address(input), (float*)Address(output), (float*)Address(weight), (float*)Address(factor), samples, groups, groupSize, positions);
        else
            BlockDiagonalMap((double*)Address(input), (double*)Address(output), (double*)Address(weight), (double*)Address(factor), samples, groups, groupSize, positions);
    }

    /// <summary>The AII gate's tensors and the scale its output is multiplied by: y = sigmoid(expand relu(layernorm(reduce v))) * scale.</summary>
    internal sealed record Gate(Tensor Reduce, Tensor NormWeight, Tensor NormBias, double NormEps, Tensor Expand, double Scale)
    {
        /// <summary>The tensors, for <see cref="Apply"/>.</summary>
        internal Tensor[] Tensors => [Reduce, NormWeight, NormBias, Expand];

        internal GateKernels.Weights<T> Weights<T>() where T : unmanaged =>
            new(Address(Reduce), Address(NormWeight), Address(NormBias), NormEps, Address(Expand), Reduce.shape[1], Reduce.shape[0]);
    }

    /// <summary>
    /// A whole evaluation-mode CE, one sample per loop item: the sample's instance variances, its gate,
    /// then its d x d maps weight[g] + diag(gate), so that the maps read the sample while it is still in
    /// cache (one pass over the activation from memory instead of two). Returns false, leaving the output
    /// unwritten for that sample, when a variance is not finite. Used when there are samples enough to
    /// keep every thread busy (<see cref="FusesSamples"/>); otherwise <see cref="InstanceVariance(Tensor, Tensor, long)"/>,
    /// the gate, and <see cref="BlockDiagonalMap(Tensor, Tensor, Tensor, Tensor, int, int)"/>.
    /// </summary>
    internal static bool ChannelEquilibrium(Tensor input, Tensor output, Tensor weight, Gate gate, int groups, int groupSize) =>
        ChannelEquilibrium(input, output, Address(weight), gate, groups, groupSize);

    /// <summary><see cref="ChannelEquilibrium(Tensor, Tensor, Tensor, Gate, int, int)"/> with the (G, d, d) weight at an address.</summary>
    internal static bool ChannelEquilibrium(Tensor input, Tensor output, nint weight, Gate gate, int groups, int groupSize)
    {
        long samples = input.shape[0], channels = input.shape[1], positions = input.numel() / (samples * channels);
        return input.dtype == ScalarType.Float32
            ? ChannelEquilibrium((float*)Address(input), (float*)Address(output), (float*)weight, gate.Weights<float>(), (float)gate.Scale, samples, groups, groupSize, positions)
            : ChannelEquilibrium((double*)Address(input), (double*)Address(output), (double*)weight, gate.Weights<double>(), gate.Scale, samples, groups, groupSize, positions);
    }

    /// <summary>Whether <see cref="ChannelEquilibrium(Tensor, Tensor, Tensor, Gate, int, int)"/> keeps every thread busy for this batch.</summary>
    internal static bool FusesSamples(long samples) => samples >= 2 * Math.Max(1, get_num_threads());

    private static bool ChannelEquilibrium<T>(T* source, T* target, T* weights, GateKernels.Weights<T> gate, T scale,
        long samples, int groups, int d, long positions)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        long channels = (long)groups * d, hidden = gate.Hidden;
        nint input = (nint)source, output = (nint)target, weight = (nint)weights;
        int notFinite = 0;
        ParallelLoop.ForShares(samples, workPerItem: channels * positions * (d + 2), body: sample =>
        {
            var buffers = System.Buffers.ArrayPool<T>.Shared.Rent((int)(2 * channels + hidden + d * d));
            try
            {
                fixed (T* buffer = buffers)
                {
                    T* variance = buffer, factor = buffer + channels, h = factor + channels, map = h + hidden;
                    T* x = (T*)input + sample * channels * positions, y = (T*)output + sample * channels * positions;
                    for (long c = 0; c < channels; c++)
                    {
                        // The maps then write lines the core already holds instead of fetching each at its first store
                        // (in a network the output is memory that was last touched long ago).
                        Prefetch(y + c * positions, positions);
                        variance[c] = RowVariance(x + c * positions, positions, out _);
                    }
                    for (long c = 0; c < channels; c++)
                        if (!T.IsFinite(variance[c]))
                        {
                            Interlocked.Exchange(ref notFinite, 1);
                            return;
                        }
                    GateKernels.Forward(gate, variance, factor, scale, h);
                    for (int group = 0; group < groups; group++)
                    {
                        SampleMap((T*)weight + (long)group * d * d, factor + group * d, map, d);
                        long offset = (long)group * d * positions;
                        Map(x + offset, d, null, null, 0, y + offset, d, map, null, positions);
                    }
                }
            }
            finally
            {
                System.Buffers.ArrayPool<T>.Shared.Return(buffers);
            }
        });
        return notFinite == 0;
    }

    /// <summary>
    /// (sample, group) blocks per loop item: about 2^17 elements, so that an item is worth handing to a
    /// thread where maps are small (14x14), but at least 4 items per thread where there are blocks enough.
    /// </summary>
    internal static long BlocksPerItem(long blocks, long elementsPerBlock) =>
        Math.Clamp((1L << 17) / elementsPerBlock, 1, Math.Max(1, blocks / (4 * Math.Max(1, get_num_threads()))));

    /// <summary>One group's map for one sample: <paramref name="map"/> = weight + diag(factor), all d x d.</summary>
    internal static void SampleMap<T>(T* weight, T* factor, T* map, int d) where T : unmanaged, INumber<T>
    {
        new ReadOnlySpan<T>(weight, d * d).CopyTo(new Span<T>(map, d * d));
        for (int i = 0; i < d; i++)
            map[i * d + i] += factor[i];
    }

    private static void InstanceVariance<T>(T* source, T* target, long rows, long positions) where T : unmanaged, INumber<T>
    {
        nint input = (nint)source, variance = (nint)target;
        long rowsPerTask = Math.Max(1, (1L << 16) / positions);
        ParallelLoop.For((rows + rowsPerTask - 1) / rowsPerTask, workPerItem: 2 * rowsPerTask * positions, body: task =>
        {
            long end = Math.Min(rows, (task + 1) * rowsPerTask);
            for (long row = task * rowsPerTask; row < end; row++)
                ((T*)variance)[row] = RowVariance((T*)input + row * positions, positions, out _);
        });
    }

    /// <summary>The maps of <see cref="BlockDiagonalMap(Tensor, Tensor, Tensor, Tensor, int, int)"/>, in parallel over (sample, group).</summary>
    internal static void BlockDiagonalMap<T>(T* source, T* target, T* weights, T* factors, long samples, int groups, int d, long positions)
        where T : unmanaged, INumber<T>
    {
        nint input = (nint)source, output = (nint)target, weight = (nint)weights, factor = (nint)factors;
        long pairs = samples * groups, pairsPerItem = BlocksPerItem(pairs, d * positions);
        long ahead = PrefetchDistance<T>(d, positions, pairs);
        ParallelLoop.For((pairs + pairsPerItem - 1) / pairsPerItem, workPerItem: pairsPerItem * d * d * positions, body: item =>
        {
            T* map = stackalloc T[d * d];
            for (long pair = item * pairsPerItem; pair < Math.Min(pairs, (item + 1) * pairsPerItem); pair++)
            {
                SampleMap((T*)weight + pair % groups * d * d, (T*)factor + pair * d, map, d);
                long offset = pair * d * positions;
                Map((T*)input + offset, d, null, null, 0, (T*)output + offset, d, map, null, positions, ahead);
            }
        });
    }
}
