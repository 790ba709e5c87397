using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace CeDsl.Kernels;

/// <summary>
/// Vectorized work on one block of rows: d channels of one sample, each a row of P contiguous
/// positions (a (sample, group) block of an (N, C, H, W) tensor, rows P elements apart). Row
/// statistics, the products of two blocks' rows (covariances and the gradients of maps), and maps
/// of such rows. Callers run them in parallel over blocks (<see cref="ParallelLoop"/>); nothing here
/// allocates on the heap.
/// </summary>
internal static unsafe class BlockKernels
{
    /// <summary>Bytes of packed rows one <see cref="Products{T}"/> chunk holds, so that it stays in the first-level cache.</summary>
    private const int ProductChunkBytes = 16 << 10;

    /// <summary>The address of a tensor's first element; valid while the tensor is.</summary>
    internal static nint Address(torch.Tensor tensor) =>
        // The bytes live in libtorch's heap, so the address stays valid while the tensor does.
        (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));

    /// <summary>The mean of <paramref name="count"/> contiguous values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static T RowMean<T>(T* row, long count) where T : unmanaged, INumber<T>
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
        return sum / T.CreateTruncating(count);
    }

    /// <summary>
    /// The unbiased variance of <paramref name="count"/> contiguous values, and their mean: two passes
    /// (mean, then centred squares while the row is in cache), as accurate as centring the whole tensor.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static T RowVariance<T>(T* row, long count, out T mean) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        mean = RowMean(row, count);
        var centre = new Vector<T>(mean);
        Vector<T> s0 = default, s1 = default, s2 = default, s3 = default;
        long i = 0;
        for (; i + 4 * width <= count; i += 4 * width)
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

    /// <summary>The dot product of <paramref name="count"/> contiguous values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static T Dot<T>(T* a, T* b, long count) where T : unmanaged, INumber<T>
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

    /// <summary><paramref name="target"/>[i] += <paramref name="scale"/> * <paramref name="source"/>[i] for <paramref name="count"/> values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AddScaled<T>(T* target, T* source, T scale, long count) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        var factor = new Vector<T>(scale);
        long i = 0;
        for (; i + width <= count; i += width)
            Store(target + i, MultiplyAdd(factor, Load(source + i), Load(target + i)));
        for (; i < count; i++)
            target[i] += scale * source[i];
    }

    /// <summary>
    /// result[i * rowsB + j] += sum over p of (a[i, p] - aCentre[i]) * (b[j, p] - bCentre[j]), in double, for
    /// <paramref name="rowsA"/> rows of <paramref name="a"/> and <paramref name="rowsB"/> of <paramref name="b"/>, each
    /// <paramref name="positions"/> long and <paramref name="positions"/> apart (a null centre is zero).
    /// <paramref name="symmetric"/>: b is a with the same centre, and only the upper half is computed, then mirrored.
    /// </summary>
    /// <remarks>
    /// The rows are packed, centred, a chunk of positions at a time into a buffer that stays in the
    /// first-level cache; each 4 x 4 block of the result then runs over the chunk in 16 vector
    /// accumulators (8 loads per 16 multiply-adds), summed into the double result once per chunk.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Products<T>(T* a, T* aCentre, int rowsA, T* b, T* bCentre, int rowsB, long positions, bool symmetric, double* result)
        where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        int packedRows = symmetric ? rowsA : rowsA + rowsB;
        int chunk = Math.Max(width, ProductChunkBytes / sizeof(T) / packedRows / width * width);
        chunk = (int)Math.Min(chunk, (positions + width - 1) / width * width);
        T* packed = stackalloc T[packedRows * chunk];
        T* packedB = symmetric ? packed : packed + rowsA * chunk;
        for (long start = 0; start < positions; start += chunk)
        {
            int length = (int)Math.Min(chunk, positions - start);
            int span = (length + width - 1) / width * width;
            Pack(a + start, aCentre, rowsA, positions, packed, chunk, length, span);
            if (!symmetric)
                Pack(b + start, bCentre, rowsB, positions, packedB, chunk, length, span);
            for (int i = 0; i < rowsA; i += 4)
            {
                for (int j = symmetric ? i : 0; j < rowsB; j += 4)
                {
                    if (i + 4 <= rowsA && j + 4 <= rowsB)
                        ProductBlock(packed + i * chunk, packedB + j * chunk, chunk, span, result + i * rowsB + j, rowsB);
                    else
                        ProductEdge(packed, packedB, chunk, span, i, Math.Min(4, rowsA - i), j, Math.Min(4, rowsB - j), result, rowsB);
                }
            }
        }
        if (symmetric)
        {
            for (int i = 1; i < rowsA; i++)
                for (int j = 0; j < i; j++)
                    result[i * rowsB + j] = result[j * rowsB + i];
        }
    }

    /// <summary><paramref name="rows"/> rows of <paramref name="length"/> values minus their centre, zero-padded to <paramref name="span"/>.</summary>
    private static void Pack<T>(T* source, T* centre, int rows, long stride, T* packed, int chunk, int length, int span)
        where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        for (int r = 0; r < rows; r++)
        {
            T* from = source + r * stride, to = packed + r * chunk;
            T offset = centre is null ? T.Zero : centre[r];
            var vectorOffset = new Vector<T>(offset);
            int p = 0;
            for (; p + width <= length; p += width)
                Store(to + p, Load(from + p) - vectorOffset);
            for (; p < length; p++)
                to[p] = from[p] - offset;
            for (; p < span; p++)
                to[p] = T.Zero;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ProductBlock<T>(T* a, T* b, int chunk, int span, double* result, int stride) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        Vector<T> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector<T> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector<T> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector<T> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int p = 0; p < span; p += width)
        {
            var b0 = Load(b + p);
            var b1 = Load(b + chunk + p);
            var b2 = Load(b + 2 * chunk + p);
            var b3 = Load(b + 3 * chunk + p);
            var a0 = Load(a + p);
            c00 = MultiplyAdd(a0, b0, c00);
            c01 = MultiplyAdd(a0, b1, c01);
            c02 = MultiplyAdd(a0, b2, c02);
            c03 = MultiplyAdd(a0, b3, c03);
            var a1 = Load(a + chunk + p);
            c10 = MultiplyAdd(a1, b0, c10);
            c11 = MultiplyAdd(a1, b1, c11);
            c12 = MultiplyAdd(a1, b2, c12);
            c13 = MultiplyAdd(a1, b3, c13);
            var a2 = Load(a + 2 * chunk + p);
            c20 = MultiplyAdd(a2, b0, c20);
            c21 = MultiplyAdd(a2, b1, c21);
            c22 = MultiplyAdd(a2, b2, c22);
            c23 = MultiplyAdd(a2, b3, c23);
            var a3 = Load(a + 3 * chunk + p);
            c30 = MultiplyAdd(a3, b0, c30);
            c31 = MultiplyAdd(a3, b1, c31);
            c32 = MultiplyAdd(a3, b2, c32);
            c33 = MultiplyAdd(a3, b3, c33);
        }
        AddSums(result, c00, c01, c02, c03);
        AddSums(result + stride, c10, c11, c12, c13);
        AddSums(result + 2 * stride, c20, c21, c22, c23);
        AddSums(result + 3 * stride, c30, c31, c32, c33);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddSums<T>(double* row, Vector<T> s0, Vector<T> s1, Vector<T> s2, Vector<T> s3) where T : unmanaged, INumber<T>
    {
        row[0] += double.CreateTruncating(Vector.Sum(s0));
        row[1] += double.CreateTruncating(Vector.Sum(s1));
        row[2] += double.CreateTruncating(Vector.Sum(s2));
        row[3] += double.CreateTruncating(Vector.Sum(s3));
    }

    /// <summary>A block at the edge of the result (fewer than 4 rows or columns left): one accumulator per entry.</summary>
    private static void ProductEdge<T>(T* a, T* b, int chunk, int span, int i0, int rows, int j0, int columns, double* result, int stride)
        where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        for (int i = i0; i < i0 + rows; i++)
        {
            for (int j = j0; j < j0 + columns; j++)
            {
                Vector<T> sum = default;
                for (int p = 0; p < span; p += width)
                    sum = MultiplyAdd(Load(a + i * chunk + p), Load(b + j * chunk + p), sum);
                result[i * stride + j] += double.CreateTruncating(Vector.Sum(sum));
            }
        }
    }

    /// <summary>
    /// output[i, p] = bias[i] + sum over j of map[i, j] * in[j, p] for <paramref name="outputRows"/> output rows,
    /// where the input rows are the <paramref name="firstRows"/> rows of <paramref name="first"/> followed by the
    /// <paramref name="secondRows"/> rows of <paramref name="second"/> minus <paramref name="secondCentre"/>
    /// (map: outputRows x (firstRows + secondRows), row-major; bias, second and its centre may be null).
    /// All rows are <paramref name="positions"/> long and apart. <paramref name="output"/> may be
    /// <paramref name="first"/> itself: each tile of positions is packed aside before any of it is written.
    /// </summary>
    /// <remarks>
    /// Tile by tile of 2 vectors of positions: each tile is packed into a contiguous buffer first,
    /// which also keeps the rows of a large map (the stem's d = 64) from evicting each other from the
    /// first-level cache. The last, partial tile is packed with zeros and computed whole into a
    /// staging buffer, so that small maps (14x14 leaves 4 of 196 positions) need no scalar loop.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Map<T>(T* first, int firstRows, T* second, T* secondCentre, int secondRows, T* output, int outputRows,
        T* map, T* bias, long positions) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count, tile = 2 * width, inputRows = firstRows + secondRows;
        T* packed = stackalloc T[inputRows * tile];
        long p = 0;
        for (; p + tile <= positions; p += tile)
        {
            for (int j = 0; j < firstRows; j++)
            {
                Store(packed + j * tile, Load(first + j * positions + p));
                Store(packed + j * tile + width, Load(first + j * positions + p + width));
            }
            for (int j = 0; j < secondRows; j++)
            {
                var centre = new Vector<T>(secondCentre is null ? T.Zero : secondCentre[j]);
                T* row = packed + (firstRows + j) * tile;
                Store(row, Load(second + j * positions + p) - centre);
                Store(row + width, Load(second + j * positions + p + width) - centre);
            }
            MapTile(packed, output + p, positions, map, bias, outputRows, inputRows, width);
        }
        int rest = (int)(positions - p);
        if (rest == 0)
            return;
        T* staged = stackalloc T[outputRows * tile];
        new Span<T>(packed, inputRows * tile).Clear();
        for (int j = 0; j < firstRows; j++)
            new ReadOnlySpan<T>(first + j * positions + p, rest).CopyTo(new Span<T>(packed + j * tile, rest));
        for (int j = 0; j < secondRows; j++)
        {
            T centre = secondCentre is null ? T.Zero : secondCentre[j];
            for (int q = 0; q < rest; q++)
                packed[(firstRows + j) * tile + q] = second[j * positions + p + q] - centre;
        }
        MapTile(packed, staged, tile, map, bias, outputRows, inputRows, width);
        for (int i = 0; i < outputRows; i++)
            new ReadOnlySpan<T>(staged + i * tile, rest).CopyTo(new Span<T>(output + i * positions + p, rest));
    }

    /// <summary>
    /// The map of one packed tile (input rows of 2 vectors) into <paramref name="output"/>, rows
    /// <paramref name="stride"/> apart: 4 output rows at a time, 8 accumulators, each input vector
    /// loaded once per 4 rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MapTile<T>(T* packed, T* output, long stride, T* map, T* bias, int outputRows, int inputRows, int width)
        where T : unmanaged, INumber<T>
    {
        int tile = 2 * width, i = 0;
        for (; i + 4 <= outputRows; i += 4)
        {
            Vector<T> a00 = default, a10 = default, a20 = default, a30 = default;
            if (bias is not null)
            {
                a00 = new Vector<T>(bias[i]);
                a10 = new Vector<T>(bias[i + 1]);
                a20 = new Vector<T>(bias[i + 2]);
                a30 = new Vector<T>(bias[i + 3]);
            }
            Vector<T> a01 = a00, a11 = a10, a21 = a20, a31 = a30;
            T* m0 = map + i * inputRows, m1 = m0 + inputRows, m2 = m1 + inputRows, m3 = m2 + inputRows;
            for (int j = 0; j < inputRows; j++)
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
        for (; i < outputRows; i++)
        {
            Vector<T> a0 = bias is null ? default : new Vector<T>(bias[i]), a1 = a0;
            for (int j = 0; j < inputRows; j++)
            {
                var m = new Vector<T>(map[i * inputRows + j]);
                a0 = MultiplyAdd(m, Load(packed + j * tile), a0);
                a1 = MultiplyAdd(m, Load(packed + j * tile + width), a1);
            }
            Store(output + i * stride, a0);
            Store(output + i * stride + width, a1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> Load<T>(T* address) where T : unmanaged => Unsafe.ReadUnaligned<Vector<T>>(address);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store<T>(T* address, Vector<T> value) where T : unmanaged => Unsafe.WriteUnaligned(address, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> MultiplyAdd<T>(Vector<T> a, Vector<T> b, Vector<T> addend) where T : unmanaged, INumber<T>
    {
        // One fused instruction where the CPU has one, a multiply and an add where it has not.
        if (typeof(T) == typeof(float))
            return Vector.MultiplyAddEstimate(a.As<T, float>(), b.As<T, float>(), addend.As<T, float>()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Vector.MultiplyAddEstimate(a.As<T, double>(), b.As<T, double>(), addend.As<T, double>()).As<double, T>();
        return a * b + addend;
    }
}
