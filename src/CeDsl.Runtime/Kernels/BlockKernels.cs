using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace CeDsl.Kernels;

/// <summary>
/// Vectorized work on one block of rows: d channels of one sample, each a row of P contiguous
/// positions (a (sample, group) block of an (N, C, H, W) tensor, rows P elements apart). Row
/// statistics, the products of two blocks' rows (covariances and the gradients of maps), and maps
/// of such rows. Callers run them in parallel over blocks (<see cref="ParallelLoop"/>); nothing here
/// allocates on the heap.
/// </summary>
/// <remarks>
/// Every method with a loop is compiled fully optimized at its first call
/// (<see cref="MethodImplOptions.AggressiveOptimization"/>): the JIT does not inline the larger ones,
/// and their first, unoptimized tier calls the vector helpers one by one, 20-40 times slower.
/// </remarks>
internal static unsafe class BlockKernels
{
    /// <summary>Bytes of the rows one <see cref="Products{T}"/> chunk covers, so that they stay in the second-level cache.</summary>
    private const int ProductChunkBytes = 256 << 10;

    /// <summary>
    /// At most this many input rows of each kind (the first rows, the centred second ones) a map reads in place rather than
    /// packed (<see cref="Map{T}"/>): packing each tile cost forward and backward pass 2 at 32x1024x14x14 about a sixth
    /// of their time (docs/benchmarks/ce-training.md), and the maps ran faster in place at every row length measured,
    /// 32x32 rows 4 KB apart included.
    /// </summary>
    private const int InPlaceRows = 16;

    /// <summary>
    /// Operands of a pass at least this large stream from beyond the caches (<see cref="PrefetchDistance{T}"/>).
    /// </summary>
    internal const long StreamingBytes = 16 << 20;

    /// <summary>
    /// Rows at most this long are short, for <see cref="PrefetchDistance{T}"/>.
    /// </summary>
    internal const long ShortRowBytes = 1 << 10;

    /// <summary>
    /// How far along the rows a map of a long row prefetches (<see cref="PrefetchDistance{T}"/>): 4 tiles of 2
    /// 512-bit vectors.
    /// </summary>
    internal const long LongRowAheadBytes = 512;

    /// <summary>
    /// How far ahead, in elements, a pass that maps the contiguous blocks of <paramref name="rows"/> rows of
    /// <paramref name="positions"/> prefetches its inputs and outputs, over <paramref name="blocks"/> blocks each: where
    /// the operands stream (<see cref="StreamingBytes"/>), one block for short rows (<see cref="ShortRowBytes"/>) and
    /// <see cref="LongRowAheadBytes"/> along the same rows for longer ones; otherwise 0, no prefetch.
    /// </summary>
    /// <remarks>
    /// A map walks the 16 or 32 input rows of a block side by side, a tile of a few cache lines of each at a time. Over
    /// whole activations that spill out of the second-level cache, prefetching the next block as each tile is packed
    /// took the C = 1024 layer's training step (32x1024x14x14, 25.7 MB) from x2.50 to x2.28 BN; over 32x256x56x56 (rows
    /// of 12.5 KB, blocks of 200 KB, so that a block ahead of three operands no longer fits the second-level cache) it
    /// did not pay (x2.08 with it, x2.06 without, 10 alternating pairs), and a few tiles ahead along the same rows does:
    /// 512 bytes ahead took CE's share of that step from 36.1-37.0 to 32.7-33.4 ms and backward pass 2 from 17.2-17.5 to
    /// 14.0-14.8 ms (in one process, the variants alternating, in both orders), beat 256 and 512 positions ahead, and
    /// took the step from x2.01 to x1.855 BN (6 invocations each, docs/benchmarks/ce-training.md). On operands that stay
    /// in the caches the prefetches only cost instructions. Prefetching the output's lines as well (a fresh tensor, whose
    /// lines the first stores would otherwise fetch from memory) took the C = 1024 layer's step from x2.29 to x2.24 BN (medians of 6 alternating pairs). The products
    /// (Gram, dY X^T) read a block again from the first-level cache for each 4 of its rows, and prefetching the next
    /// block made them a third slower at 14x14; where the maps prefetch whole blocks, the products instead prefetch the
    /// whole of the block they are about to read (prefetcht0, <see cref="PrefetchesBlocks{T}"/>), so that its rows arrive
    /// together rather than 4 at a time as the products first touch them.
    /// </remarks>
    internal static long PrefetchDistance<T>(int rows, long positions, long blocks) where T : unmanaged =>
        blocks * rows * positions * sizeof(T) < StreamingBytes ? 0
        : positions * sizeof(T) <= ShortRowBytes ? rows * positions
        : LongRowAheadBytes / sizeof(T);

    /// <summary>Whether a pass over these blocks prefetches whole blocks (<see cref="PrefetchDistance{T}"/>: short rows that stream).</summary>
    internal static bool PrefetchesBlocks<T>(int rows, long positions, long blocks) where T : unmanaged =>
        positions * sizeof(T) <= ShortRowBytes && PrefetchDistance<T>(rows, positions, blocks) != 0;

    /// <summary>
    /// Prefetches the cache lines of <paramref name="count"/> elements from <paramref name="start"/>, where the CPU has the
    /// instruction: prefetcht1 for what a later block reads, prefetcht0 (<paramref name="now"/>) for what is read at once.
    /// </summary>
    internal static void Prefetch<T>(T* start, long count, bool now = false) where T : unmanaged
    {
        if (!Sse.IsSupported)
            return;
        byte* end = (byte*)(start + count);
        for (byte* line = (byte*)start; line < end; line += 64)
        {
            if (now)
                Sse.Prefetch0(line);
            else
                Sse.Prefetch1(line);
        }
    }

    /// <summary>
    /// Whether the CPU has 512-bit vectors and <see cref="Vector{T}"/> is half as wide: where the kernels take
    /// <see cref="Vector512{T}"/> first (on cores with full-width 512-bit units, twice the multiply-adds per instruction).
    /// </summary>
    private static bool Has512<T>() where T : unmanaged => Vector512.IsHardwareAccelerated && Vector512<T>.Count == 2 * Vector<T>.Count;

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

    /// <summary>
    /// c = alpha op(a) b + beta c for row-major matrices: op(a) is <paramref name="rows"/> x <paramref name="inner"/>
    /// (a itself, or the transpose of the inner x rows <paramref name="a"/>), b is inner x <paramref name="columns"/>,
    /// c rows x columns. Rows <paramref name="firstRow"/> .. <paramref name="firstRow"/> + <paramref name="rowCount"/> - 1
    /// of c only, so that callers can share the rows out among threads.
    /// </summary>
    /// <remarks>
    /// 4 rows of c by 2 vectors of columns at a time in 8 accumulators: each pair of vectors of b is loaded
    /// once per 4 rows, each element of a broadcast once per 2 vectors; where the CPU has 512-bit vectors, 8 rows
    /// at a time in 16 of them first (<see cref="MultiplyRowsIn512{T}"/>).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Multiply<T>(T* a, bool transposeA, T* b, T* c, long rows, long inner, long columns, T alpha, T beta,
        long firstRow = 0, long rowCount = -1) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        long end = rowCount < 0 ? rows : firstRow + rowCount;
        long strideI = transposeA ? 1 : inner, strideK = transposeA ? rows : 1;
        var scale = new Vector<T>(alpha);
        var keep = new Vector<T>(beta);
        long i = firstRow;
        for (; Has512<T>() && i + 8 <= end; i += 8)
        {
            long done = MultiplyRowsIn512(a + i * strideI, strideI, strideK, b, c + i * columns, inner, columns, alpha, beta);
            FourRows(i, done);
            FourRows(i + 4, done);
        }
        for (; i + 4 <= end; i += 4)
            FourRows(i, 0);
        for (; i < end; i++)
        {
            long j = 0;
            for (; j + width <= columns; j += width)
            {
                Vector<T> sum = default;
                for (long k = 0; k < inner; k++)
                    sum = MultiplyAdd(new Vector<T>(a[i * strideI + k * strideK]), Load(b + k * columns + j), sum);
                Store(c + i * columns + j, beta == T.Zero ? scale * sum : keep * Load(c + i * columns + j) + scale * sum);
            }
            for (; j < columns; j++)
                Scalar(i, j);
        }

        // Rows row .. row + 3 from column j on.
        void FourRows(long row, long j)
        {
            T* a0 = a + row * strideI, a1 = a0 + strideI, a2 = a1 + strideI, a3 = a2 + strideI;
            for (; j + 2 * width <= columns; j += 2 * width)
            {
                Vector<T> s00 = default, s01 = default, s10 = default, s11 = default;
                Vector<T> s20 = default, s21 = default, s30 = default, s31 = default;
                for (long k = 0; k < inner; k++)
                {
                    T* next = b + k * columns + j;
                    var y0 = Load(next);
                    var y1 = Load(next + width);
                    var x = new Vector<T>(a0[k * strideK]);
                    s00 = MultiplyAdd(x, y0, s00);
                    s01 = MultiplyAdd(x, y1, s01);
                    x = new Vector<T>(a1[k * strideK]);
                    s10 = MultiplyAdd(x, y0, s10);
                    s11 = MultiplyAdd(x, y1, s11);
                    x = new Vector<T>(a2[k * strideK]);
                    s20 = MultiplyAdd(x, y0, s20);
                    s21 = MultiplyAdd(x, y1, s21);
                    x = new Vector<T>(a3[k * strideK]);
                    s30 = MultiplyAdd(x, y0, s30);
                    s31 = MultiplyAdd(x, y1, s31);
                }
                Combine(c + row * columns + j, s00, s01);
                Combine(c + (row + 1) * columns + j, s10, s11);
                Combine(c + (row + 2) * columns + j, s20, s21);
                Combine(c + (row + 3) * columns + j, s30, s31);
            }
            for (; j < columns; j++)
                for (long r = 0; r < 4; r++)
                    Scalar(row + r, j);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void Combine(T* target, Vector<T> first, Vector<T> second)
        {
            Store(target, beta == T.Zero ? scale * first : keep * Load(target) + scale * first);
            Store(target + width, beta == T.Zero ? scale * second : keep * Load(target + width) + scale * second);
        }

        void Scalar(long row, long column)
        {
            T sum = T.Zero;
            for (long k = 0; k < inner; k++)
                sum += a[row * strideI + k * strideK] * b[k * columns + column];
            T* target = c + row * columns + column;
            *target = beta == T.Zero ? alpha * sum : beta * *target + alpha * sum;
        }
    }

    /// <summary>
    /// <see cref="Multiply{T}"/>'s 8 rows of c from <paramref name="a"/>'s row (<paramref name="c"/> their first), over
    /// the columns that whole 512-bit vectors cover, where the CPU has them and <see cref="Vector{T}"/> is narrower: 2
    /// vectors at a time (16 accumulators: each pair of vectors of b loaded once per 8 rows), then 1. The same chain of
    /// fused multiply-adds per element as the narrower vectors, so the same numbers. Returns the columns done.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static long MultiplyRowsIn512<T>(T* a, long strideI, long strideK, T* b, T* c, long inner, long columns, T alpha, T beta)
        where T : unmanaged, INumber<T>
    {
        int step = Vector512<T>.Count;
        T* a0 = a, a1 = a0 + strideI, a2 = a1 + strideI, a3 = a2 + strideI, a4 = a3 + strideI, a5 = a4 + strideI, a6 = a5 + strideI, a7 = a6 + strideI;
        var scale = Vector512.Create(alpha);
        var keep = Vector512.Create(beta);
        long j = 0;
        for (; j + 2 * step <= columns; j += 2 * step)
        {
            Vector512<T> s00 = default, s01 = default, s10 = default, s11 = default;
            Vector512<T> s20 = default, s21 = default, s30 = default, s31 = default;
            Vector512<T> s40 = default, s41 = default, s50 = default, s51 = default;
            Vector512<T> s60 = default, s61 = default, s70 = default, s71 = default;
            T* row = b + j;
            for (nint k = 0, at = 0; k < inner; k++, row += columns, at += (nint)strideK)
            {
                var y0 = Vector512.Load(row);
                var y1 = Vector512.Load(row + step);
                var x = Vector512.Create(a0[at]);
                s00 = MultiplyAdd(x, y0, s00);
                s01 = MultiplyAdd(x, y1, s01);
                x = Vector512.Create(a1[at]);
                s10 = MultiplyAdd(x, y0, s10);
                s11 = MultiplyAdd(x, y1, s11);
                x = Vector512.Create(a2[at]);
                s20 = MultiplyAdd(x, y0, s20);
                s21 = MultiplyAdd(x, y1, s21);
                x = Vector512.Create(a3[at]);
                s30 = MultiplyAdd(x, y0, s30);
                s31 = MultiplyAdd(x, y1, s31);
                x = Vector512.Create(a4[at]);
                s40 = MultiplyAdd(x, y0, s40);
                s41 = MultiplyAdd(x, y1, s41);
                x = Vector512.Create(a5[at]);
                s50 = MultiplyAdd(x, y0, s50);
                s51 = MultiplyAdd(x, y1, s51);
                x = Vector512.Create(a6[at]);
                s60 = MultiplyAdd(x, y0, s60);
                s61 = MultiplyAdd(x, y1, s61);
                x = Vector512.Create(a7[at]);
                s70 = MultiplyAdd(x, y0, s70);
                s71 = MultiplyAdd(x, y1, s71);
            }
            CombinePair(c + j, s00, s01);
            CombinePair(c + columns + j, s10, s11);
            CombinePair(c + 2 * columns + j, s20, s21);
            CombinePair(c + 3 * columns + j, s30, s31);
            CombinePair(c + 4 * columns + j, s40, s41);
            CombinePair(c + 5 * columns + j, s50, s51);
            CombinePair(c + 6 * columns + j, s60, s61);
            CombinePair(c + 7 * columns + j, s70, s71);
        }
        for (; j + step <= columns; j += step)
        {
            Vector512<T> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            T* row = b + j;
            for (nint k = 0, at = 0; k < inner; k++, row += columns, at += (nint)strideK)
            {
                var y = Vector512.Load(row);
                s0 = MultiplyAdd(Vector512.Create(a0[at]), y, s0);
                s1 = MultiplyAdd(Vector512.Create(a1[at]), y, s1);
                s2 = MultiplyAdd(Vector512.Create(a2[at]), y, s2);
                s3 = MultiplyAdd(Vector512.Create(a3[at]), y, s3);
                s4 = MultiplyAdd(Vector512.Create(a4[at]), y, s4);
                s5 = MultiplyAdd(Vector512.Create(a5[at]), y, s5);
                s6 = MultiplyAdd(Vector512.Create(a6[at]), y, s6);
                s7 = MultiplyAdd(Vector512.Create(a7[at]), y, s7);
            }
            Combine(c + j, s0);
            Combine(c + columns + j, s1);
            Combine(c + 2 * columns + j, s2);
            Combine(c + 3 * columns + j, s3);
            Combine(c + 4 * columns + j, s4);
            Combine(c + 5 * columns + j, s5);
            Combine(c + 6 * columns + j, s6);
            Combine(c + 7 * columns + j, s7);
        }
        return j;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void Combine(T* target, Vector512<T> sum) =>
            Vector512.Store(beta == T.Zero ? scale * sum : keep * Vector512.Load(target) + scale * sum, target);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void CombinePair(T* target, Vector512<T> first, Vector512<T> second)
        {
            Combine(target, first);
            Combine(target + step, second);
        }
    }

    /// <summary>target (columns x rows) = the transpose of source (rows x columns), both row-major.</summary>
    internal static void Transpose<T>(T* source, T* target, long rows, long columns) where T : unmanaged
    {
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < columns; j++)
                target[j * rows + i] = source[i * columns + j];
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
    /// <paramref name="positions"/> long and <paramref name="positions"/> apart (centres: both or neither).
    /// <paramref name="symmetric"/>: b is a with the same centre, and only the upper half is computed, then mirrored.
    /// </summary>
    /// <remarks>
    /// Each 4 x 4 block of the result runs over the rows in 16 vector accumulators (8 loads per 16
    /// multiply-adds, centred as they are loaded; 512-bit vectors where the CPU has them and a row holds
    /// one), a chunk of positions at a time that keeps the rows in the second-level cache for the other
    /// blocks; the positions after the last whole vector come in the row's last vector, the lanes already
    /// counted masked off, so that each entry is one sum across the lanes of its accumulator.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Products<T>(T* a, T* aCentre, int rowsA, T* b, T* bCentre, int rowsB, long positions, bool symmetric, double* result)
        where T : unmanaged, INumber<T>
    {
        if (aCentre is null)
            Products<T, Uncentred>(a, aCentre, rowsA, b, bCentre, rowsB, positions, symmetric, result);
        else
            Products<T, Centred>(a, aCentre, rowsA, b, bCentre, rowsB, positions, symmetric, result);
        if (symmetric)
        {
            for (int i = 1; i < rowsA; i++)
                for (int j = 0; j < i; j++)
                    result[i * rowsB + j] = result[j * rowsB + i];
        }
    }

    /// <summary>Whether <see cref="Products{T}"/> subtracts the centres (a type argument, so that the JIT compiles each case on its own).</summary>
    private struct Centred;

    /// <inheritdoc cref="Centred"/>
    private struct Uncentred;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Products<T, TCentring>(T* a, T* aCentre, int rowsA, T* b, T* bCentre, int rowsB, long positions, bool symmetric, double* result)
        where T : unmanaged, INumber<T> where TCentring : struct
    {
        // 512-bit vectors where the CPU has them and a row holds one (a 14x14 row: 12 and a masked one); the edge blocks
        // take the narrower vectors.
        bool wide = Has512<T>() && positions >= Vector512<T>.Count;
        int narrow = Vector<T>.Count, width = wide ? Vector512<T>.Count : narrow;
        long chunk = Math.Max(width, ProductChunkBytes / sizeof(T) / (symmetric ? rowsA : rowsA + rowsB) / width * width);
        long end = positions / width * width, narrowEnd = positions / narrow * narrow;
        // Positions after the last whole vector: the row's last vector, its lanes before them masked off.
        var tailMask = TailMask<T>((int)(positions - narrowEnd));
        var wideTailMask = wide ? TailMask512<T>((int)(positions - end)) : default;
        for (long start = 0; start < end; start += chunk)
        {
            long span = Math.Min(chunk, end - start);
            bool lastChunk = start + span == end;
            long last = lastChunk && end < positions ? positions - width - start : -1;
            // The narrower vectors (edge blocks, or every block): in the last chunk whole ones up to the row's last, then that one masked.
            long narrowSpan = lastChunk ? narrowEnd - start : span;
            long narrowLast = lastChunk && narrowEnd < positions ? positions - narrow - start : -1;
            for (int i = 0; i < rowsA; i += 4)
            {
                for (int j = symmetric ? i : 0; j < rowsB; j += 4)
                {
                    if (i + 4 > rowsA || j + 4 > rowsB)
                        ProductEdge<T, TCentring>(a + start, aCentre, positions, b + start, bCentre, positions, narrowSpan, narrowLast, tailMask,
                            i, Math.Min(4, rowsA - i), j, Math.Min(4, rowsB - j), result, rowsB);
                    else if (wide)
                        ProductBlockIn512<T, TCentring>(a + i * positions + start, aCentre + i, positions, b + j * positions + start, bCentre + j, positions, span, last, wideTailMask,
                            result + i * rowsB + j, rowsB);
                    else
                        ProductBlock<T, TCentring>(a + i * positions + start, aCentre + i, positions, b + j * positions + start, bCentre + j, positions, narrowSpan, narrowLast, tailMask,
                            result + i * rowsB + j, rowsB);
                }
            }
        }
        // Rows shorter than a vector.
        for (int i = 0; i < rowsA && positions < narrow; i++)
            for (int j = symmetric ? i : 0; j < rowsB; j++)
            {
                T centreA = typeof(TCentring) == typeof(Centred) ? aCentre[i] : T.Zero, centreB = typeof(TCentring) == typeof(Centred) ? bCentre[j] : T.Zero;
                double sum = 0;
                for (long p = 0; p < positions; p++)
                    sum += double.CreateTruncating((a[i * positions + p] - centreA) * (b[j * positions + p] - centreB));
                result[i * rowsB + j] += sum;
            }
    }

    /// <summary>
    /// <see cref="TailMask{T}"/> in a 512-bit vector, twice as wide as <see cref="Vector{T}"/> where it is called
    /// (<see cref="Has512{T}"/>): the upper half holds the last lanes.
    /// </summary>
    private static Vector512<T> TailMask512<T>(int count) where T : unmanaged, INumber<T>
    {
        int half = Vector<T>.Count;
        return Vector512.Create(TailMask<T>(Math.Max(0, count - half)).AsVector256(), TailMask<T>(Math.Min(count, half)).AsVector256());
    }

    /// <summary>A vector whose last <paramref name="count"/> lanes are all ones (bits), the others zero.</summary>
    private static Vector<T> TailMask<T>(int count) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        Span<T> lanes = stackalloc T[width];
        for (int lane = 0; lane < width; lane++)
            lanes[lane] = lane >= width - count ? T.One : T.Zero;
        return Vector.GreaterThan(new Vector<T>(lanes), Vector<T>.Zero);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Centre<T, TCentring>(T* centre) where T : unmanaged, INumber<T> where TCentring : struct =>
        typeof(TCentring) == typeof(Centred) ? new Vector<T>(*centre) : default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Load<T, TCentring>(T* address, Vector<T> centre) where T : unmanaged, INumber<T> where TCentring : struct =>
        typeof(TCentring) == typeof(Centred) ? Load(address) - centre : Load(address);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProductBlock<T, TCentring>(T* a, T* aCentre, long strideA, T* b, T* bCentre, long strideB, long span, long last, Vector<T> lastMask,
        double* result, int resultStride)
        where T : unmanaged, INumber<T> where TCentring : struct
    {
        int width = Vector<T>.Count;
        Vector<T> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector<T> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector<T> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector<T> c30 = default, c31 = default, c32 = default, c33 = default;
        T* a0 = a, a1 = a + strideA, a2 = a + 2 * strideA, a3 = a + 3 * strideA;
        T* b0 = b, b1 = b + strideB, b2 = b + 2 * strideB, b3 = b + 3 * strideB;
        Vector<T> m0 = Centre<T, TCentring>(aCentre), m1 = Centre<T, TCentring>(aCentre + 1), m2 = Centre<T, TCentring>(aCentre + 2), m3 = Centre<T, TCentring>(aCentre + 3);
        Vector<T> n0 = Centre<T, TCentring>(bCentre), n1 = Centre<T, TCentring>(bCentre + 1), n2 = Centre<T, TCentring>(bCentre + 2), n3 = Centre<T, TCentring>(bCentre + 3);
        // Whole vectors, then the row's last vector with the lanes already counted masked off.
        var mask = Vector<T>.AllBitsSet;
        for (long p = 0; p < span || last >= 0; p += width)
        {
            if (p >= span)
            {
                (p, mask, last) = (last, lastMask, -1);
            }
            var y0 = Load<T, TCentring>(b0 + p, n0) & mask;
            var y1 = Load<T, TCentring>(b1 + p, n1) & mask;
            var y2 = Load<T, TCentring>(b2 + p, n2) & mask;
            var y3 = Load<T, TCentring>(b3 + p, n3) & mask;
            var x = Load<T, TCentring>(a0 + p, m0);
            c00 = MultiplyAdd(x, y0, c00);
            c01 = MultiplyAdd(x, y1, c01);
            c02 = MultiplyAdd(x, y2, c02);
            c03 = MultiplyAdd(x, y3, c03);
            x = Load<T, TCentring>(a1 + p, m1);
            c10 = MultiplyAdd(x, y0, c10);
            c11 = MultiplyAdd(x, y1, c11);
            c12 = MultiplyAdd(x, y2, c12);
            c13 = MultiplyAdd(x, y3, c13);
            x = Load<T, TCentring>(a2 + p, m2);
            c20 = MultiplyAdd(x, y0, c20);
            c21 = MultiplyAdd(x, y1, c21);
            c22 = MultiplyAdd(x, y2, c22);
            c23 = MultiplyAdd(x, y3, c23);
            x = Load<T, TCentring>(a3 + p, m3);
            c30 = MultiplyAdd(x, y0, c30);
            c31 = MultiplyAdd(x, y1, c31);
            c32 = MultiplyAdd(x, y2, c32);
            c33 = MultiplyAdd(x, y3, c33);
        }
        AddSums(result, c00, c01, c02, c03);
        AddSums(result + resultStride, c10, c11, c12, c13);
        AddSums(result + 2 * resultStride, c20, c21, c22, c23);
        AddSums(result + 3 * resultStride, c30, c31, c32, c33);
    }

    /// <summary>
    /// <see cref="ProductBlock{T, TCentring}"/> in 512-bit vectors (<see cref="Products{T, TCentring}"/>; on cores
    /// with full-width 512-bit units, twice the multiply-adds per instruction).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProductBlockIn512<T, TCentring>(T* a, T* aCentre, long strideA, T* b, T* bCentre, long strideB, long span, long last,
        Vector512<T> lastMask, double* result, int resultStride)
        where T : unmanaged, INumber<T> where TCentring : struct
    {
        int step = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<T> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<T> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<T> c30 = default, c31 = default, c32 = default, c33 = default;
        T* a0 = a, a1 = a + strideA, a2 = a + 2 * strideA, a3 = a + 3 * strideA;
        T* b0 = b, b1 = b + strideB, b2 = b + 2 * strideB, b3 = b + 3 * strideB;
        Vector512<T> m0 = Centre512<T, TCentring>(aCentre), m1 = Centre512<T, TCentring>(aCentre + 1), m2 = Centre512<T, TCentring>(aCentre + 2), m3 = Centre512<T, TCentring>(aCentre + 3);
        Vector512<T> n0 = Centre512<T, TCentring>(bCentre), n1 = Centre512<T, TCentring>(bCentre + 1), n2 = Centre512<T, TCentring>(bCentre + 2), n3 = Centre512<T, TCentring>(bCentre + 3);
        // Whole vectors, then the row's last vector with the lanes already counted masked off.
        var mask = Vector512<T>.AllBitsSet;
        for (long p = 0; p < span || last >= 0; p += step)
        {
            if (p >= span)
            {
                (p, mask, last) = (last, lastMask, -1);
            }
            var y0 = Load512<T, TCentring>(b0 + p, n0) & mask;
            var y1 = Load512<T, TCentring>(b1 + p, n1) & mask;
            var y2 = Load512<T, TCentring>(b2 + p, n2) & mask;
            var y3 = Load512<T, TCentring>(b3 + p, n3) & mask;
            var x = Load512<T, TCentring>(a0 + p, m0);
            c00 = MultiplyAdd(x, y0, c00);
            c01 = MultiplyAdd(x, y1, c01);
            c02 = MultiplyAdd(x, y2, c02);
            c03 = MultiplyAdd(x, y3, c03);
            x = Load512<T, TCentring>(a1 + p, m1);
            c10 = MultiplyAdd(x, y0, c10);
            c11 = MultiplyAdd(x, y1, c11);
            c12 = MultiplyAdd(x, y2, c12);
            c13 = MultiplyAdd(x, y3, c13);
            x = Load512<T, TCentring>(a2 + p, m2);
            c20 = MultiplyAdd(x, y0, c20);
            c21 = MultiplyAdd(x, y1, c21);
            c22 = MultiplyAdd(x, y2, c22);
            c23 = MultiplyAdd(x, y3, c23);
            x = Load512<T, TCentring>(a3 + p, m3);
            c30 = MultiplyAdd(x, y0, c30);
            c31 = MultiplyAdd(x, y1, c31);
            c32 = MultiplyAdd(x, y2, c32);
            c33 = MultiplyAdd(x, y3, c33);
        }
        AddSums(result, Halves(c00), Halves(c01), Halves(c02), Halves(c03));
        AddSums(result + resultStride, Halves(c10), Halves(c11), Halves(c12), Halves(c13));
        AddSums(result + 2 * resultStride, Halves(c20), Halves(c21), Halves(c22), Halves(c23));
        AddSums(result + 3 * resultStride, Halves(c30), Halves(c31), Halves(c32), Halves(c33));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Centre512<T, TCentring>(T* centre) where T : unmanaged, INumber<T> where TCentring : struct =>
        typeof(TCentring) == typeof(Centred) ? Vector512.Create(*centre) : default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Load512<T, TCentring>(T* address, Vector512<T> centre) where T : unmanaged, INumber<T> where TCentring : struct =>
        typeof(TCentring) == typeof(Centred) ? Vector512.Load(address) - centre : Vector512.Load(address);

    /// <summary>The sum of a 512-bit vector's two halves, as a <see cref="Vector{T}"/> (which is 256 bits wide where this is called).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Halves<T>(Vector512<T> v) where T : unmanaged, INumber<T> => (v.GetLower() + v.GetUpper()).AsVector();

    /// <summary>
    /// row[k] += the sum of the lanes of s_k, k = 0..3. With AVX and 256-bit vectors, the four sums come out
    /// of three horizontal adds together (a block's 16 sums matter where rows are short, 14x14 or 8x8).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddSums<T>(double* row, Vector<T> s0, Vector<T> s1, Vector<T> s2, Vector<T> s3) where T : unmanaged, INumber<T>
    {
        if (Avx.IsSupported && Vector<T>.Count * sizeof(T) == 32)
        {
            Vector256<double> sums;
            if (typeof(T) == typeof(float))
            {
                var pairs = Avx.HorizontalAdd(Avx.HorizontalAdd(s0.AsVector256().AsSingle(), s1.AsVector256().AsSingle()),
                    Avx.HorizontalAdd(s2.AsVector256().AsSingle(), s3.AsVector256().AsSingle()));
                sums = Avx.ConvertToVector256Double(pairs.GetLower() + pairs.GetUpper());
            }
            else
            {
                var low = Avx.HorizontalAdd(s0.AsVector256().AsDouble(), s1.AsVector256().AsDouble());
                var high = Avx.HorizontalAdd(s2.AsVector256().AsDouble(), s3.AsVector256().AsDouble());
                sums = Avx.Permute2x128(low, high, 0x20) + Avx.Permute2x128(low, high, 0x31);
            }
            Vector256.Store(Vector256.Load(row) + sums, row);
            return;
        }
        row[0] += double.CreateTruncating(Vector.Sum(s0));
        row[1] += double.CreateTruncating(Vector.Sum(s1));
        row[2] += double.CreateTruncating(Vector.Sum(s2));
        row[3] += double.CreateTruncating(Vector.Sum(s3));
    }

    /// <summary>A block at the edge of the result (fewer than 4 rows or columns left): one accumulator per entry.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProductEdge<T, TCentring>(T* a, T* aCentre, long strideA, T* b, T* bCentre, long strideB, long span, long last, Vector<T> lastMask,
        int i0, int rows, int j0, int columns, double* result, int resultStride)
        where T : unmanaged, INumber<T> where TCentring : struct
    {
        int width = Vector<T>.Count;
        for (int i = i0; i < i0 + rows; i++)
        {
            var m = Centre<T, TCentring>(aCentre + i);
            for (int j = j0; j < j0 + columns; j++)
            {
                var n = Centre<T, TCentring>(bCentre + j);
                Vector<T> sum = default;
                for (long p = 0; p < span; p += width)
                    sum = MultiplyAdd(Load<T, TCentring>(a + i * strideA + p, m), Load<T, TCentring>(b + j * strideB + p, n), sum);
                if (last >= 0)
                    sum = MultiplyAdd(Load<T, TCentring>(a + i * strideA + last, m), Load<T, TCentring>(b + j * strideB + last, n) & lastMask, sum);
                result[i * resultStride + j] += double.CreateTruncating(Vector.Sum(sum));
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
    /// <paramref name="ahead"/>: where not 0, each tile's positions in the input and output rows <paramref name="ahead"/>
    /// elements further on (the next block of a pass, or further along long rows, <see cref="PrefetchDistance{T}"/>) are
    /// prefetched as each tile is read.
    /// </summary>
    /// <remarks>
    /// Tile by tile of 4 vectors of positions. Where the output is not an input and the input rows are few
    /// (<see cref="InPlaceRows"/>: 16 of them, or 16 and 16 where the 512-bit tiles compute every output row,
    /// the second rows centred as they are loaded), the tile reads the rows where they are; otherwise each tile
    /// is packed into a contiguous buffer first, which also keeps the rows of a large map (the stem's d = 64)
    /// from evicting each other from the first-level cache. Then 8 output rows at a time in 512-bit vectors
    /// where the CPU has them, 4 at a time in 16 accumulators otherwise, each input vector loaded once per
    /// 8 or 4 rows: each output the same chain of multiply-adds whichever way its rows were read. The positions
    /// after the last whole tile: where the output is not an input, one last tile that overlaps the one before it (those outputs are computed twice, alike), of 2 vectors
    /// where they cover the rest (14x14: 208 positions computed for 196, not 224), else of 4;
    /// otherwise tiles of 2 vectors, the last one packed with zeros and computed whole into a staging
    /// buffer, so that small maps (14x14 leaves 4 of 196 positions) need no scalar loop.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Map<T>(T* first, int firstRows, T* second, T* secondCentre, int secondRows, T* output, int outputRows,
        T* map, T* bias, long positions, long ahead = 0) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count, wide = 4 * width, tile = 2 * width, inputRows = firstRows + secondRows;
        T* packed = stackalloc T[inputRows * wide];
        // Read in place rather than packed: rows few enough not to evict each other from the first-level cache, and not
        // written over; that need no centring, or (both row sets) where the 512-bit tiles compute every output row,
        // centring the second rows as they are loaded.
        bool inPlace = secondRows == 0 && firstRows <= InPlaceRows && output != first;
        bool centredInPlace = secondRows > 0 && inputRows <= 2 * InPlaceRows && Has512<T>() && outputRows % 8 == 0
            && output != first && output != second;
        T* centres = stackalloc T[centredInPlace ? inputRows : 0];
        for (int j = 0; centredInPlace && j < inputRows; j++)
            centres[j] = j < firstRows || secondCentre is null ? T.Zero : secondCentre[j - firstRows];
        long p = 0;
        for (; p + wide <= positions; p += wide)
        {
            PrefetchNext(first, firstRows, second, secondRows, output, outputRows, positions, p, wide, ahead);
            if (inPlace)
                MapWideTile(first + p, positions, output + p, positions, map, bias, outputRows, inputRows, width);
            else if (centredInPlace)
                MapWideTileIn512(new TileInput<T>(first + p, second + p, firstRows, centres, positions), output + p, positions, map, bias, outputRows, inputRows);
            else
            {
                PackTile(first, firstRows, second, secondCentre, secondRows, positions, p, packed, wide);
                MapWideTile(packed, wide, output + p, positions, map, bias, outputRows, inputRows, width);
            }
        }
        if (p == positions)
            return;
        if (p > 0 && output != first && output != second)
        {
            int last = positions - p <= tile ? tile : wide;
            PrefetchNext(first, firstRows, second, secondRows, output, outputRows, positions, positions - last, last, ahead);
            T* input = first + positions - last;
            long inputStride = positions;
            if (centredInPlace)
            {
                var rows = new TileInput<T>(input, second + positions - last, firstRows, centres, positions);
                if (last == tile)
                    MapTileIn512(rows, output + positions - last, positions, map, bias, outputRows, inputRows);
                else
                    MapWideTileIn512(rows, output + positions - last, positions, map, bias, outputRows, inputRows);
                return;
            }
            if (!inPlace)
            {
                PackTile(first, firstRows, second, secondCentre, secondRows, positions, positions - last, packed, last);
                input = packed;
                inputStride = last;
            }
            if (last == tile)
                MapTile(input, inputStride, output + positions - last, positions, map, bias, outputRows, inputRows, width);
            else
                MapWideTile(input, inputStride, output + positions - last, positions, map, bias, outputRows, inputRows, width);
            return;
        }
        for (; p + tile <= positions; p += tile)
        {
            PrefetchNext(first, firstRows, second, secondRows, output, outputRows, positions, p, tile, ahead);
            PackTile(first, firstRows, second, secondCentre, secondRows, positions, p, packed, tile);
            MapTile(packed, tile, output + p, positions, map, bias, outputRows, inputRows, width);
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
        MapTile(packed, tile, staged, tile, map, bias, outputRows, inputRows, width);
        for (int i = 0; i < outputRows; i++)
            new ReadOnlySpan<T>(staged + i * tile, rest).CopyTo(new Span<T>(output + i * positions + p, rest));
    }

    /// <summary>Where <paramref name="ahead"/> is not 0, prefetches positions p .. p + <paramref name="tile"/> - 1 of the input and output rows <paramref name="ahead"/> elements further on.</summary>
    private static void PrefetchNext<T>(T* first, int firstRows, T* second, int secondRows, T* output, int outputRows, long positions, long p, int tile, long ahead)
        where T : unmanaged
    {
        if (ahead == 0)
            return;
        for (int j = 0; j < firstRows; j++)
            Prefetch(first + ahead + j * positions + p, tile);
        for (int j = 0; j < secondRows; j++)
            Prefetch(second + ahead + j * positions + p, tile);
        for (int i = 0; i < outputRows; i++)
            Prefetch(output + ahead + i * positions + p, tile);
    }

    /// <summary>The input rows' positions p .. p + <paramref name="tile"/> - 1 (whole vectors), the second rows centred, into <paramref name="packed"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTile<T>(T* first, int firstRows, T* second, T* secondCentre, int secondRows, long positions, long p, T* packed, int tile)
        where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        if (Has512<T>() && tile % (2 * width) == 0)
        {
            PackTileIn512(first, firstRows, second, secondCentre, secondRows, positions, p, packed, tile);
            return;
        }
        for (int j = 0; j < firstRows; j++)
            for (int q = 0; q < tile; q += width)
                Store(packed + j * tile + q, Load(first + j * positions + p + q));
        for (int j = 0; j < secondRows; j++)
        {
            var centre = new Vector<T>(secondCentre is null ? T.Zero : secondCentre[j]);
            T* row = packed + (firstRows + j) * tile;
            for (int q = 0; q < tile; q += width)
                Store(row + q, Load(second + j * positions + p + q) - centre);
        }
    }

    /// <summary><see cref="PackTile{T}"/> in 512-bit vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTileIn512<T>(T* first, int firstRows, T* second, T* secondCentre, int secondRows, long positions, long p, T* packed, int tile)
        where T : unmanaged, INumber<T>
    {
        int half = Vector512<T>.Count;
        for (int j = 0; j < firstRows; j++)
            for (int q = 0; q < tile; q += half)
                Vector512.Store(Vector512.Load(first + j * positions + p + q), packed + j * tile + q);
        for (int j = 0; j < secondRows; j++)
        {
            var centre = Vector512.Create(secondCentre is null ? T.Zero : secondCentre[j]);
            T* row = packed + (firstRows + j) * tile;
            for (int q = 0; q < tile; q += half)
                Vector512.Store(Vector512.Load(second + j * positions + p + q) - centre, row + q);
        }
    }

    /// <summary>
    /// Where a tile's input rows are: <see cref="FirstRows"/> rows from <see cref="First"/>, then the rest from
    /// <see cref="Second"/>, each <see cref="Stride"/> after the one before (a packed tile, or the rows themselves); where
    /// <see cref="Centres"/> is not null, row j less its centre (zero for the first rows), as <see cref="PackTile{T}"/> gives.
    /// </summary>
    private readonly struct TileInput<T>(T* first, T* second, int firstRows, T* centres, long stride) where T : unmanaged
    {
        /// <summary><paramref name="count"/> rows from <paramref name="rows"/>, none centred.</summary>
        public TileInput(T* rows, long stride, int count) : this(rows, rows, count, null, stride)
        {
        }

        public readonly T* First = first, Second = second, Centres = centres;
        public readonly int FirstRows = firstRows;
        public readonly long Stride = stride;
    }

    /// <summary>
    /// <see cref="MapTile{T}"/>'s first rows, 8 at a time, in 512-bit vectors (one per tile row) where the CPU has them
    /// and <see cref="Vector{T}"/> is narrower, as <see cref="MapWideTileIn512{T}"/> does for the wider tiles. Returns the rows done.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int MapTileIn512<T>(in TileInput<T> input, T* output, long stride, T* map, T* bias, int outputRows, int inputRows)
        where T : unmanaged, INumber<T>
    {
        T* first = input.First, second = input.Second, centres = input.Centres;
        int firstRows = input.FirstRows;
        int half = Vector512<T>.Count, i = 0;
        nint step = (nint)input.Stride;
        for (; i + 8 <= outputRows; i += 8)
        {
            Vector512<T> a0 = Bias512(bias, i), a1 = Bias512(bias, i + 1), a2 = Bias512(bias, i + 2), a3 = Bias512(bias, i + 3);
            Vector512<T> a4 = Bias512(bias, i + 4), a5 = Bias512(bias, i + 5), a6 = Bias512(bias, i + 6), a7 = Bias512(bias, i + 7);
            T* m0 = map + i * inputRows, m1 = m0 + inputRows, m2 = m1 + inputRows, m3 = m2 + inputRows;
            T* m4 = m3 + inputRows, m5 = m4 + inputRows, m6 = m5 + inputRows, m7 = m6 + inputRows;
            T* row = first;
            for (nint j = 0; j < inputRows; j++, row += step)
            {
                if (j == firstRows)
                    row = second;
                var x = Vector512.Load(row);
                if (centres != null)
                    x -= Vector512.Create(centres[j]);
                a0 = MultiplyAdd(Vector512.Create(m0[j]), x, a0);
                a1 = MultiplyAdd(Vector512.Create(m1[j]), x, a1);
                a2 = MultiplyAdd(Vector512.Create(m2[j]), x, a2);
                a3 = MultiplyAdd(Vector512.Create(m3[j]), x, a3);
                a4 = MultiplyAdd(Vector512.Create(m4[j]), x, a4);
                a5 = MultiplyAdd(Vector512.Create(m5[j]), x, a5);
                a6 = MultiplyAdd(Vector512.Create(m6[j]), x, a6);
                a7 = MultiplyAdd(Vector512.Create(m7[j]), x, a7);
            }
            T* o = output + i * stride;
            Vector512.Store(a0, o);
            Vector512.Store(a1, o + stride);
            Vector512.Store(a2, o + 2 * stride);
            Vector512.Store(a3, o + 3 * stride);
            Vector512.Store(a4, o + 4 * stride);
            Vector512.Store(a5, o + 5 * stride);
            Vector512.Store(a6, o + 6 * stride);
            Vector512.Store(a7, o + 7 * stride);
        }
        return i;
    }

    /// <summary>
    /// The map of one packed tile (input rows of 4 vectors) into <paramref name="output"/>, rows
    /// <paramref name="stride"/> apart: 4 output rows at a time, 16 accumulators.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MapWideTile<T>(T* packed, long inputStride, T* output, long stride, T* map, T* bias, int outputRows, int inputRows, int width)
        where T : unmanaged, INumber<T>
    {
        int wide = 4 * width, i = 0;
        if (Has512<T>())
            i = MapWideTileIn512(new TileInput<T>(packed, inputStride, inputRows), output, stride, map, bias, outputRows, inputRows);
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
            Vector<T> a01 = a00, a02 = a00, a03 = a00, a11 = a10, a12 = a10, a13 = a10;
            Vector<T> a21 = a20, a22 = a20, a23 = a20, a31 = a30, a32 = a30, a33 = a30;
            T* m0 = map + i * inputRows, m1 = m0 + inputRows, m2 = m1 + inputRows, m3 = m2 + inputRows;
            for (int j = 0; j < inputRows; j++)
            {
                T* row = packed + j * inputStride;
                var x0 = Load(row);
                var x1 = Load(row + width);
                var x2 = Load(row + 2 * width);
                var x3 = Load(row + 3 * width);
                var m = new Vector<T>(m0[j]);
                a00 = MultiplyAdd(m, x0, a00);
                a01 = MultiplyAdd(m, x1, a01);
                a02 = MultiplyAdd(m, x2, a02);
                a03 = MultiplyAdd(m, x3, a03);
                m = new Vector<T>(m1[j]);
                a10 = MultiplyAdd(m, x0, a10);
                a11 = MultiplyAdd(m, x1, a11);
                a12 = MultiplyAdd(m, x2, a12);
                a13 = MultiplyAdd(m, x3, a13);
                m = new Vector<T>(m2[j]);
                a20 = MultiplyAdd(m, x0, a20);
                a21 = MultiplyAdd(m, x1, a21);
                a22 = MultiplyAdd(m, x2, a22);
                a23 = MultiplyAdd(m, x3, a23);
                m = new Vector<T>(m3[j]);
                a30 = MultiplyAdd(m, x0, a30);
                a31 = MultiplyAdd(m, x1, a31);
                a32 = MultiplyAdd(m, x2, a32);
                a33 = MultiplyAdd(m, x3, a33);
            }
            StoreRow(output + i * stride, a00, a01, a02, a03, width);
            StoreRow(output + (i + 1) * stride, a10, a11, a12, a13, width);
            StoreRow(output + (i + 2) * stride, a20, a21, a22, a23, width);
            StoreRow(output + (i + 3) * stride, a30, a31, a32, a33, width);
        }
        for (; i < outputRows; i++)
        {
            Vector<T> a0 = bias is null ? default : new Vector<T>(bias[i]), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < inputRows; j++)
            {
                T* row = packed + j * inputStride;
                var m = new Vector<T>(map[i * inputRows + j]);
                a0 = MultiplyAdd(m, Load(row), a0);
                a1 = MultiplyAdd(m, Load(row + width), a1);
                a2 = MultiplyAdd(m, Load(row + 2 * width), a2);
                a3 = MultiplyAdd(m, Load(row + 3 * width), a3);
            }
            StoreRow(output + i * stride, a0, a1, a2, a3, width);
        }
    }

    /// <summary>
    /// <see cref="MapWideTile{T}"/>'s first rows, 8 at a time, in 512-bit vectors (2 per tile row) where the CPU
    /// has them and <see cref="Vector{T}"/> is narrower: on cores with full-width 512-bit units this doubles
    /// the multiply-adds per instruction. Each output element is the same chain of fused multiply-adds
    /// over the input rows in the same order, so the numbers are those of the narrower vectors. Returns
    /// the rows done.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int MapWideTileIn512<T>(in TileInput<T> input, T* output, long stride, T* map, T* bias, int outputRows, int inputRows)
        where T : unmanaged, INumber<T>
    {
        T* first = input.First, second = input.Second, centres = input.Centres;
        int firstRows = input.FirstRows;
        int half = Vector512<T>.Count, i = 0;
        nint step = (nint)input.Stride;
        for (; i + 8 <= outputRows; i += 8)
        {
            Vector512<T> a00 = Bias512(bias, i), a10 = Bias512(bias, i + 1), a20 = Bias512(bias, i + 2), a30 = Bias512(bias, i + 3);
            Vector512<T> a40 = Bias512(bias, i + 4), a50 = Bias512(bias, i + 5), a60 = Bias512(bias, i + 6), a70 = Bias512(bias, i + 7);
            Vector512<T> a01 = a00, a11 = a10, a21 = a20, a31 = a30, a41 = a40, a51 = a50, a61 = a60, a71 = a70;
            // A base per map row, indexed by j, and a native-sized step: no address arithmetic in the loop but the index.
            T* m0 = map + i * inputRows, m1 = m0 + inputRows, m2 = m1 + inputRows, m3 = m2 + inputRows;
            T* m4 = m3 + inputRows, m5 = m4 + inputRows, m6 = m5 + inputRows, m7 = m6 + inputRows;
            T* row = first;
            for (nint j = 0; j < inputRows; j++, row += step)
            {
                if (j == firstRows)
                    row = second;
                var x0 = Vector512.Load(row);
                var x1 = Vector512.Load(row + half);
                if (centres != null)
                {
                    var centre = Vector512.Create(centres[j]);
                    x0 -= centre;
                    x1 -= centre;
                }
                var w = Vector512.Create(m0[j]);
                a00 = MultiplyAdd(w, x0, a00);
                a01 = MultiplyAdd(w, x1, a01);
                w = Vector512.Create(m1[j]);
                a10 = MultiplyAdd(w, x0, a10);
                a11 = MultiplyAdd(w, x1, a11);
                w = Vector512.Create(m2[j]);
                a20 = MultiplyAdd(w, x0, a20);
                a21 = MultiplyAdd(w, x1, a21);
                w = Vector512.Create(m3[j]);
                a30 = MultiplyAdd(w, x0, a30);
                a31 = MultiplyAdd(w, x1, a31);
                w = Vector512.Create(m4[j]);
                a40 = MultiplyAdd(w, x0, a40);
                a41 = MultiplyAdd(w, x1, a41);
                w = Vector512.Create(m5[j]);
                a50 = MultiplyAdd(w, x0, a50);
                a51 = MultiplyAdd(w, x1, a51);
                w = Vector512.Create(m6[j]);
                a60 = MultiplyAdd(w, x0, a60);
                a61 = MultiplyAdd(w, x1, a61);
                w = Vector512.Create(m7[j]);
                a70 = MultiplyAdd(w, x0, a70);
                a71 = MultiplyAdd(w, x1, a71);
            }
            T* o = output + i * stride;
            StoreRow512(o, a00, a01, half);
            StoreRow512(o + stride, a10, a11, half);
            StoreRow512(o + 2 * stride, a20, a21, half);
            StoreRow512(o + 3 * stride, a30, a31, half);
            StoreRow512(o + 4 * stride, a40, a41, half);
            StoreRow512(o + 5 * stride, a50, a51, half);
            StoreRow512(o + 6 * stride, a60, a61, half);
            StoreRow512(o + 7 * stride, a70, a71, half);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Bias512<T>(T* bias, int row) where T : unmanaged, INumber<T> =>
        bias is null ? Vector512<T>.Zero : Vector512.Create(bias[row]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow512<T>(T* output, Vector512<T> v0, Vector512<T> v1, int half) where T : unmanaged
    {
        Vector512.Store(v0, output);
        Vector512.Store(v1, output + half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> MultiplyAdd<T>(Vector512<T> a, Vector512<T> b, Vector512<T> addend) where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float))
            return Vector512.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), addend.As<T, float>()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Vector512.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), addend.As<T, double>()).As<double, T>();
        return a * b + addend;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<T>(T* output, Vector<T> v0, Vector<T> v1, Vector<T> v2, Vector<T> v3, int width) where T : unmanaged
    {
        Store(output, v0);
        Store(output + width, v1);
        Store(output + 2 * width, v2);
        Store(output + 3 * width, v3);
    }

    /// <summary>
    /// The map of one packed tile (input rows of 2 vectors) into <paramref name="output"/>, rows
    /// <paramref name="stride"/> apart: 4 output rows at a time, 8 accumulators, each input vector
    /// loaded once per 4 rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MapTile<T>(T* packed, long inputStride, T* output, long stride, T* map, T* bias, int outputRows, int inputRows, int width)
        where T : unmanaged, INumber<T>
    {
        int i = Has512<T>() ? MapTileIn512(new TileInput<T>(packed, inputStride, inputRows), output, stride, map, bias, outputRows, inputRows) : 0;
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
                var x0 = Load(packed + j * inputStride);
                var x1 = Load(packed + j * inputStride + width);
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
                a0 = MultiplyAdd(m, Load(packed + j * inputStride), a0);
                a1 = MultiplyAdd(m, Load(packed + j * inputStride + width), a1);
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
