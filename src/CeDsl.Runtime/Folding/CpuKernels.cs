using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Folding;

/// <summary>
/// The per-sample work of a folded CE or AII on CPU tensors, written with <see cref="Vector{T}"/> and
/// run on libtorch's threads (<see cref="ParallelLoop"/>): the instance variance, the per-sample
/// block-diagonal map, and both with the gate between them, sample by sample.
/// libtorch has no operator for either shape of work. Its general ones take 2-4 times as long
/// and allocate activation-sized temporaries, which this VM pays for in page faults
/// (docs/benchmarks/folding.md). <see cref="Apply"/> says which tensors they take; the folded
/// modules use libtorch's operators for the rest (other devices, other element types).
/// </summary>
internal static unsafe class CpuKernels
{
    /// <summary>
    /// Whether the kernels can take these tensors: contiguous float32 or float64 on the CPU, at most
    /// 2 GB each (what a span addresses), and no gradient to record (the kernels are not autograd
    /// operators).
    /// </summary>
    internal static bool Apply(params Tensor[] tensors) => tensors.All(tensor =>
        tensor.device_type == DeviceType.CPU
        && tensor.dtype is ScalarType.Float32 or ScalarType.Float64
        && tensor.is_contiguous()
        && tensor.numel() * tensor.element_size() <= int.MaxValue
        && !(tensor.requires_grad && is_grad_enabled()));

    /// <summary>
    /// The unbiased variance over the last <paramref name="positions"/> elements of every row of
    /// <paramref name="input"/> (N*C rows), into <paramref name="variance"/> (N*C elements). Two passes
    /// per row (mean, then centred squares), so it is as accurate as centring the whole tensor; the row
    /// is still in cache for the second pass.
    /// </summary>
    internal static void InstanceVariance(Tensor input, Tensor variance, long positions)
    {
        if (input.dtype == ScalarType.Float32) InstanceVariance<float>(input, variance, positions);
        else InstanceVariance<double>(input, variance, positions);
    }

    /// <summary>
    /// output[n, g*d + i, p] = sum_j (weight[g, i, j] + (i == j ? factor[n, g*d + i] : 0)) * input[n, g*d + j, p]
    /// for input and output (N, G*d, P), weight (G, d, d) and factor (N, G*d). <paramref name="output"/>
    /// may be <paramref name="input"/> itself: each tile of d x 2V positions is copied aside before
    /// any of it is written.
    /// </summary>
    internal static void BlockDiagonalMap(Tensor input, Tensor output, Tensor weight, Tensor factor, int groups, int groupSize)
    {
        if (input.dtype == ScalarType.Float32) BlockDiagonalMap<float>(input, output, weight, factor, groups, groupSize);
        else BlockDiagonalMap<double>(input, output, weight, factor, groups, groupSize);
    }

    /// <summary>The AII gate's tensors: y = sigmoid(expand relu(layernorm(reduce v))) * scale.</summary>
    internal sealed record Gate(Tensor Reduce, Tensor NormWeight, Tensor NormBias, double NormEps, Tensor Expand, Tensor Scale);

    /// <summary>
    /// A whole folded CE, one sample per loop item: the sample's instance variances, its gate, then
    /// its d x d maps, so that the maps read the sample while it is still in cache (one pass over the
    /// activation from memory instead of two). Returns false, leaving the output unwritten for that
    /// sample, when a variance is not finite. Used when there are samples enough to keep every thread
    /// busy; otherwise <see cref="InstanceVariance"/>, the gate in libtorch, and
    /// <see cref="BlockDiagonalMap"/>.
    /// </summary>
    internal static bool ChannelEquilibrium(Tensor input, Tensor output, Tensor weight, Gate gate, int groups, int groupSize)
    {
        return input.dtype == ScalarType.Float32
            ? ChannelEquilibrium<float>(input, output, weight, gate, groups, groupSize)
            : ChannelEquilibrium<double>(input, output, weight, gate, groups, groupSize);
    }

    /// <summary>Whether <see cref="ChannelEquilibrium"/> keeps every thread busy for this batch.</summary>
    internal static bool FusesSamples(long samples) => samples >= 2 * Math.Max(1, get_num_threads());

    private static bool ChannelEquilibrium<T>(Tensor input, Tensor output, Tensor weight, Gate gate, int groups, int d)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        nint source = Address(input), target = Address(output), weights = Address(weight);
        nint reduce = Address(gate.Reduce), normWeight = Address(gate.NormWeight), normBias = Address(gate.NormBias), expand = Address(gate.Expand);
        T scale = *(T*)Address(gate.Scale), eps = T.CreateChecked(gate.NormEps);
        long channels = input.shape[1], hidden = gate.Reduce.shape[0], positions = input.numel() / (input.shape[0] * channels);
        int notFinite = 0;
        ParallelLoop.For(input.shape[0], sample =>
        {
            var buffers = System.Buffers.ArrayPool<T>.Shared.Rent((int)(2 * channels + hidden + d * d));
            try
            {
                fixed (T* buffer = buffers)
                {
                    T* variance = buffer, factor = buffer + channels, h = factor + channels, map = h + hidden;
                    T* x = (T*)source + sample * channels * positions, y = (T*)target + sample * channels * positions;
                    for (long c = 0; c < channels; c++)
                        variance[c] = RowVariance(x + c * positions, positions);
                    for (long c = 0; c < channels; c++)
                        if (!T.IsFinite(variance[c]))
                        {
                            Interlocked.Exchange(ref notFinite, 1);
                            return;
                        }
                    GateFactor(variance, factor, h, (T*)reduce, (T*)normWeight, (T*)normBias, eps, (T*)expand, scale, channels, hidden);
                    for (int group = 0; group < groups; group++)
                    {
                        SampleMap((T*)weights + (long)group * d * d, factor + group * d, map, d);
                        long offset = (long)group * d * positions;
                        MapGroup(x + offset, y + offset, map, d, positions);
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

    /// <summary>One group's map for one sample: <paramref name="map"/> = weight + diag(factor), all d x d.</summary>
    private static void SampleMap<T>(T* weight, T* factor, T* map, int d) where T : unmanaged, INumber<T>
    {
        new ReadOnlySpan<T>(weight, d * d).CopyTo(new Span<T>(map, d * d));
        for (int i = 0; i < d; i++)
            map[i * d + i] += factor[i];
    }

    /// <summary>factor = scale * sigmoid(expand relu(layernorm(reduce variance))) for one sample.</summary>
    private static void GateFactor<T>(T* variance, T* factor, T* h, T* reduce, T* normWeight, T* normBias, T eps, T* expand, T scale, long channels, long hidden)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        T mean = T.Zero;
        for (long k = 0; k < hidden; k++)
        {
            h[k] = Dot(reduce + k * channels, variance, channels);
            mean += h[k];
        }
        mean /= T.CreateTruncating(hidden);
        T spread = T.Zero;
        for (long k = 0; k < hidden; k++)
            spread += (h[k] - mean) * (h[k] - mean);
        T inverseStd = T.One / T.Sqrt(spread / T.CreateTruncating(hidden) + eps);
        for (long k = 0; k < hidden; k++)
            h[k] = T.Max(T.Zero, (h[k] - mean) * inverseStd * normWeight[k] + normBias[k]);
        for (long c = 0; c < channels; c++)
            factor[c] = scale / (T.One + T.Exp(-Dot(expand + c * hidden, h, hidden)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static T Dot<T>(T* a, T* b, long count) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        Vector<T> s0 = default, s1 = default;
        long i = 0;
        for (; i + 2 * width <= count; i += 2 * width)
        {
            s0 = MultiplyAdd(Load(a + i), Load(b + i), s0);
            s1 = MultiplyAdd(Load(a + i + width), Load(b + i + width), s1);
        }
        T sum = Vector.Sum(s0 + s1);
        for (; i < count; i++)
            sum += a[i] * b[i];
        return sum;
    }

    private static void InstanceVariance<T>(Tensor input, Tensor variance, long positions) where T : unmanaged, INumber<T>
    {
        nint source = Address(input), target = Address(variance);
        long rows = input.numel() / positions;
        long rowsPerTask = Math.Max(1, (1L << 16) / positions);
        ParallelLoop.For((rows + rowsPerTask - 1) / rowsPerTask, task =>
        {
            long end = Math.Min(rows, (task + 1) * rowsPerTask);
            for (long row = task * rowsPerTask; row < end; row++)
                ((T*)target)[row] = RowVariance((T*)source + row * positions, positions);
        });
    }

    private static void BlockDiagonalMap<T>(Tensor input, Tensor output, Tensor weight, Tensor factor, int groups, int groupSize)
        where T : unmanaged, INumber<T>
    {
        nint source = Address(input), target = Address(output), weights = Address(weight), factors = Address(factor);
        long samples = input.shape[0], positions = input.numel() / (input.shape[0] * input.shape[1]);
        int d = groupSize;
        // Several (sample, group) pairs per item where maps are small (14x14), so that an item is
        // worth handing to a thread.
        long pairs = samples * groups, pairsPerItem = Math.Max(1, (1L << 13) / positions);
        ParallelLoop.For((pairs + pairsPerItem - 1) / pairsPerItem, item =>
        {
            T* map = stackalloc T[d * d];
            for (long pair = item * pairsPerItem; pair < Math.Min(pairs, (item + 1) * pairsPerItem); pair++)
            {
                SampleMap((T*)weights + pair % groups * d * d, (T*)factors + pair * d, map, d);
                long offset = pair * d * positions;
                MapGroup((T*)source + offset, (T*)target + offset, map, d, positions);
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static T RowVariance<T>(T* row, long count) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        Vector<T> s0 = default, s1 = default, s2 = default, s3 = default;
        long i = 0;
        for (; i + 4 * width <= count; i += 4 * width)
        {
            s0 += Load(row + i);
            s1 += Load(row + i + width);
            s2 += Load(row + i + 2 * width);
            s3 += Load(row + i + 3 * width);
        }
        T sum = Vector.Sum((s0 + s1) + (s2 + s3));
        for (; i < count; i++)
            sum += row[i];
        T mean = sum / T.CreateTruncating(count);

        var centre = new Vector<T>(mean);
        s0 = s1 = s2 = s3 = default;
        for (i = 0; i + 4 * width <= count; i += 4 * width)
        {
            var d0 = Load(row + i) - centre;
            var d1 = Load(row + i + width) - centre;
            var d2 = Load(row + i + 2 * width) - centre;
            var d3 = Load(row + i + 3 * width) - centre;
            s0 = MultiplyAdd(d0, d0, s0);
            s1 = MultiplyAdd(d1, d1, s1);
            s2 = MultiplyAdd(d2, d2, s2);
            s3 = MultiplyAdd(d3, d3, s3);
        }
        T squares = Vector.Sum((s0 + s1) + (s2 + s3));
        for (; i < count; i++)
        {
            T deviation = row[i] - mean;
            squares += deviation * deviation;
        }
        return squares / T.CreateTruncating(count - 1);
    }

    /// <summary>
    /// One (sample, group): d rows of <paramref name="positions"/> elements through the d x d
    /// <paramref name="map"/>, tile by tile of 2 vectors of positions. Each tile is packed into a
    /// contiguous buffer first: that makes the map safe in place, and keeps d rows of a large map
    /// (the stem's d = 64) from evicting each other from the first-level cache. The last, partial
    /// tile is packed with zeros and computed whole into a staging buffer, so that small maps (14x14
    /// leaves 4 of 196 positions) need no scalar loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MapGroup<T>(T* input, T* output, T* map, int d, long positions) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count, tile = 2 * width;
        T* packed = stackalloc T[d * tile];
        long p = 0;
        for (; p + tile <= positions; p += tile)
        {
            for (int j = 0; j < d; j++)
            {
                Store(packed + j * tile, Load(input + j * positions + p));
                Store(packed + j * tile + width, Load(input + j * positions + p + width));
            }
            MapTile(packed, output + p, positions, map, d, width);
        }
        int rest = (int)(positions - p);
        if (rest == 0)
            return;
        T* staged = stackalloc T[d * tile];
        new Span<T>(packed, d * tile).Clear();
        for (int j = 0; j < d; j++)
            new ReadOnlySpan<T>(input + j * positions + p, rest).CopyTo(new Span<T>(packed + j * tile, rest));
        MapTile(packed, staged, tile, map, d, width);
        for (int i = 0; i < d; i++)
            new ReadOnlySpan<T>(staged + i * tile, rest).CopyTo(new Span<T>(output + i * positions + p, rest));
    }

    /// <summary>
    /// The d x d map of one packed tile (d rows of 2 vectors) into <paramref name="output"/>, rows
    /// <paramref name="stride"/> apart: 4 output rows at a time, 8 accumulators, each input vector
    /// loaded once per 4 rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MapTile<T>(T* packed, T* output, long stride, T* map, int d, int width) where T : unmanaged, INumber<T>
    {
        int tile = 2 * width, i = 0;
        for (; i + 4 <= d; i += 4)
        {
            Vector<T> a00 = default, a01 = default, a10 = default, a11 = default;
            Vector<T> a20 = default, a21 = default, a30 = default, a31 = default;
            T* m0 = map + i * d, m1 = m0 + d, m2 = m1 + d, m3 = m2 + d;
            for (int j = 0; j < d; j++)
            {
                var x0 = Load(packed + j * tile);
                var x1 = Load(packed + j * tile + width);
                var m = new Vector<T>(m0[j]);
                a00 = MultiplyAdd(m, x0, a00);
                a01 = MultiplyAdd(m, x1, a01);
                m = new Vector<T>(m1[j]);
                a10 = MultiplyAdd(m, x0, a10);
                a11 = MultiplyAdd(m, x1, a11);
                m = new Vector<T>(m2[j]);
                a20 = MultiplyAdd(m, x0, a20);
                a21 = MultiplyAdd(m, x1, a21);
                m = new Vector<T>(m3[j]);
                a30 = MultiplyAdd(m, x0, a30);
                a31 = MultiplyAdd(m, x1, a31);
            }
            T* o = output + i * stride;
            Store(o, a00);
            Store(o + width, a01);
            o += stride;
            Store(o, a10);
            Store(o + width, a11);
            o += stride;
            Store(o, a20);
            Store(o + width, a21);
            o += stride;
            Store(o, a30);
            Store(o + width, a31);
        }
        for (; i < d; i++)
        {
            Vector<T> a0 = default, a1 = default;
            for (int j = 0; j < d; j++)
            {
                var m = new Vector<T>(map[i * d + j]);
                a0 = MultiplyAdd(m, Load(packed + j * tile), a0);
                a1 = MultiplyAdd(m, Load(packed + j * tile + width), a1);
            }
            Store(output + i * stride, a0);
            Store(output + i * stride + width, a1);
        }
    }

    private static nint Address(Tensor tensor) =>
        // The bytes live in libtorch's heap, so the address stays valid while the tensor does.
        (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Load<T>(T* address) where T : unmanaged => Unsafe.ReadUnaligned<Vector<T>>(address);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<T>(T* address, Vector<T> value) where T : unmanaged => Unsafe.WriteUnaligned(address, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> MultiplyAdd<T>(Vector<T> a, Vector<T> b, Vector<T> addend) where T : unmanaged, INumber<T>
    {
        // One fused instruction where the CPU has one, a multiply and an add where it has not.
        if (typeof(T) == typeof(float))
            return Vector.MultiplyAddEstimate(a.As<T, float>(), b.As<T, float>(), addend.As<T, float>()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Vector.MultiplyAddEstimate(a.As<T, double>(), b.As<T, double>(), addend.As<T, double>()).As<double, T>();
        return a * b + addend;
    }
}
