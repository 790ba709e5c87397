using CeDsl.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Kernels;

/// <summary>
/// The block kernels against libtorch's matrix products in float64, at sizes that leave rows and columns
/// after the kernels' 4-row and whole-vector blocks, and positions after the last whole vector and tile.
/// </summary>
public unsafe class BlockKernelTests
{
    [Theory]
    [InlineData(7, 5, 13, false, 0.0)]
    [InlineData(16, 16, 16, false, 0.0)]
    [InlineData(9, 3, 10, true, 0.5)]
    [InlineData(1, 6, 3, true, 0.0)]
    [InlineData(6, 7, 29, true, 0.5)]
    [InlineData(5, 9, 40, false, 0.0)]
    [InlineData(12, 7, 29, true, 0.5)] // 8 rows in 512-bit vectors two and one at a time where the CPU has them, then the rest
    [InlineData(19, 5, 40, false, 0.0)]
    public void Multiply_is_the_matrix_product(long rows, long inner, long columns, bool transposeA, double beta)
    {
        var a = Random(1, transposeA ? [inner, rows] : [rows, inner]);
        var b = Random(2, inner, columns);
        var c = Random(3, rows, columns);
        var expected = 1.5 * (transposeA ? a.T : a).matmul(b) + beta * c;

        BlockKernels.Multiply(Pointer(a), transposeA, Pointer(b), Pointer(c), rows, inner, columns, 1.5, beta);

        Assert.True(c.allclose(expected, rtol: 1e-13, atol: 1e-13));
    }

    [Theory]
    [InlineData(10, 6, 5)]
    [InlineData(20, 24, 13)] // 8 rows in 512-bit vectors where the CPU has them, then 4, then 1
    public void Multiply_writes_only_the_rows_it_is_given(long rows, long columns, long rowCount)
    {
        var a = Random(4, rows, 4);
        var b = Random(5, 4, columns);
        var c = zeros(rows, columns, dtype: float64);

        BlockKernels.Multiply(Pointer(a), false, Pointer(b), Pointer(c), rows, 4, columns, 1.0, 0.0, firstRow: 4, rowCount: rowCount);

        var expected = a.matmul(b);
        Assert.True(c.narrow(0, 4, rowCount).allclose(expected.narrow(0, 4, rowCount), rtol: 1e-13, atol: 1e-13));
        Assert.Equal(0.0, c.narrow(0, 0, 4).abs().sum().item<double>());
        Assert.Equal(0.0, c.narrow(0, 4 + rowCount, rows - 4 - rowCount).abs().sum().item<double>());
    }

    [Theory]
    [InlineData(6, 37, true)]
    [InlineData(16, 196, true)]
    [InlineData(5, 3, true)]
    [InlineData(8, 6, true)] // rows shorter than a 512-bit vector: the narrower vectors, the last one masked
    [InlineData(6, 37, false)]
    [InlineData(16, 64, false)]
    [InlineData(16, 300, false)] // whole vectors, then the row's last one masked
    [InlineData(8, 1030, true)]
    [InlineData(6, 3003, false)] // two chunks of positions, the row's last vector masked, edge blocks in the narrower vectors
    public void Products_are_the_centred_products_of_the_rows(int rows, long positions, bool centred)
    {
        var a = Random(6, rows, positions) + 3;
        var b = centred ? a : Random(7, rows, positions);
        var centre = centred ? a.mean([1]) : null;
        var result = zeros(rows, rows, dtype: float64);

        BlockKernels.Products(Pointer(a), centre is null ? null : Pointer(centre), rows, Pointer(b), centre is null ? null : Pointer(centre),
            rows, positions, symmetric: centred, (double*)Pointer(result));

        var left = centred ? a - centre!.unsqueeze(1) : a;
        var right = centred ? left : b;
        Assert.True(result.allclose(left.matmul(right.T), rtol: 1e-12, atol: 1e-12));
    }

    [Theory]
    [InlineData(16, 0, 196, false)] // rows read in place, the last tile of 2 vectors overlapping
    [InlineData(12, 0, 50, true)] // rows read in place, the last tile of 4 vectors overlapping
    [InlineData(6, 6, 37, true)]
    [InlineData(16, 16, 196, true)] // both row sets in place, the second centred as loaded (512-bit tiles), the last tile of 1 vector
    [InlineData(8, 8, 50, false)] // the same, the last tile of 2 vectors
    [InlineData(3, 0, 20, false)]
    [InlineData(8, 8, 3, true)]
    public void Map_applies_the_matrix_to_the_rows(int firstRows, int secondRows, long positions, bool withBias)
    {
        int outputRows = Math.Max(firstRows, 1);
        var first = Random(8, firstRows, positions);
        var second = Random(9, Math.Max(secondRows, 1), positions);
        var centre = Random(10, Math.Max(secondRows, 1));
        var map = Random(11, outputRows, firstRows + secondRows);
        var bias = Random(12, outputRows);
        var output = empty(outputRows, positions, dtype: float64);

        BlockKernels.Map(Pointer(first), firstRows, secondRows == 0 ? null : Pointer(second), secondRows == 0 ? null : Pointer(centre), secondRows,
            Pointer(output), outputRows, Pointer(map), withBias ? Pointer(bias) : null, positions);

        var inputs = secondRows == 0 ? first : cat([first, second - centre.unsqueeze(1)], 0);
        var expected = map.matmul(inputs) + (withBias ? bias.unsqueeze(1) : zeros(1, dtype: float64));
        Assert.True(output.allclose(expected, rtol: 1e-13, atol: 1e-13));
    }

    [Fact]
    public void Map_may_write_over_its_input()
    {
        var rows = Random(13, 16, 37);
        var map = Random(14, 16, 16);
        var expected = map.matmul(rows);

        BlockKernels.Map(Pointer(rows), 16, null, null, 0, Pointer(rows), 16, Pointer(map), null, 37);

        Assert.True(rows.allclose(expected, rtol: 1e-13, atol: 1e-13));
    }

    [Theory]
    [InlineData(16, 196)]
    [InlineData(64, 81)]
    [InlineData(12, 64)]
    public void Map_gives_the_same_bits_whichever_rows_it_computes_together(int rows, long positions)
    {
        // Rows are computed 8, 4 or 1 at a time, in vectors of different widths where the CPU has them;
        // each output element must be the same chain of multiply-adds all the same.
        var input = Random(15, rows, positions);
        var map = Random(16, rows, rows);
        var bias = Random(17, rows);
        var together = empty(rows, positions, dtype: float64);
        var alone = empty(rows, positions, dtype: float64);

        BlockKernels.Map(Pointer(input), rows, null, null, 0, Pointer(together), rows, Pointer(map), Pointer(bias), positions);
        for (int i = 0; i < rows; i++)
            BlockKernels.Map(Pointer(input), rows, null, null, 0, Pointer(alone) + i * positions, 1, Pointer(map) + i * rows, Pointer(bias) + i, positions);

        Assert.True(together.eq(alone).all().item<bool>());
    }

    [Theory]
    [InlineData(16, 0, 196)]
    [InlineData(16, 16, 196)]
    [InlineData(8, 8, 50)]
    public void Map_gives_the_same_bits_reading_its_rows_in_place_or_packed(int firstRows, int secondRows, long positions)
    {
        // A map that writes over its first rows packs every tile; one into other rows reads them in place where it can.
        var first = Random(23, firstRows, positions);
        var second = Random(24, Math.Max(secondRows, 1), positions);
        var centre = Random(25, Math.Max(secondRows, 1));
        var map = Random(26, firstRows, firstRows + secondRows);
        var bias = Random(27, firstRows);
        var inPlace = empty(firstRows, positions, dtype: float64);
        var packed = first.clone();

        BlockKernels.Map(Pointer(first), firstRows, secondRows == 0 ? null : Pointer(second), secondRows == 0 ? null : Pointer(centre), secondRows,
            Pointer(inPlace), firstRows, Pointer(map), Pointer(bias), positions);
        BlockKernels.Map(Pointer(packed), firstRows, secondRows == 0 ? null : Pointer(second), secondRows == 0 ? null : Pointer(centre), secondRows,
            Pointer(packed), firstRows, Pointer(map), Pointer(bias), positions);

        Assert.True(inPlace.eq(packed).all().item<bool>());
    }

    [Theory]
    [InlineData(16, 0, 196)]
    [InlineData(16, 16, 196)]
    [InlineData(8, 8, 37)]
    public void Map_prefetching_ahead_gives_the_same_bits(int firstRows, int secondRows, long positions)
    {
        // Two blocks each, as in a pass: the prefetches (of the next block, or further along the rows) read real rows, and must change nothing.
        var first = Random(18, 2 * firstRows, positions);
        var second = Random(19, 2 * Math.Max(secondRows, 1), positions);
        var centre = Random(20, Math.Max(secondRows, 1));
        var map = Random(21, firstRows, firstRows + secondRows);
        var bias = Random(22, firstRows);
        var plain = empty(firstRows, positions, dtype: float64);
        var nextBlock = empty(firstRows, positions, dtype: float64);
        var alongRows = empty(firstRows, positions, dtype: float64);

        foreach (var (output, ahead) in new[] { (plain, 0L), (nextBlock, firstRows * positions), (alongRows, BlockKernels.LongRowAheadBytes / sizeof(double)) })
            BlockKernels.Map(Pointer(first), firstRows, secondRows == 0 ? null : Pointer(second), secondRows == 0 ? null : Pointer(centre), secondRows,
                Pointer(output), firstRows, Pointer(map), Pointer(bias), positions, ahead);

        Assert.True(nextBlock.eq(plain).all().item<bool>());
        Assert.True(alongRows.eq(plain).all().item<bool>());
    }

    [Theory]
    [InlineData(196, 2048, 16 * 196, true)] // 32x1024x14x14: short rows, streaming: the next block
    [InlineData(196, 1024, 0, false)] // 16x1024x14x14: 12.8 MB, stays in the caches
    [InlineData(256, 2048, 16 * 256, true)] // rows of exactly 1 KB
    [InlineData(3136, 512, 128, false)] // 32x256x56x56: long rows, streaming: 512 bytes along the same rows
    [InlineData(3136, 64, 0, false)] // 4x256x56x56: 12.8 MB
    public void Passes_prefetch_the_next_block_where_short_rows_stream_and_along_the_rows_where_long_ones_do(long positions, long blocks, long expected, bool wholeBlocks)
    {
        Assert.Equal(expected, BlockKernels.PrefetchDistance<float>(16, positions, blocks));
        Assert.Equal(wholeBlocks, BlockKernels.PrefetchesBlocks<float>(16, positions, blocks));
    }

    private static Tensor Random(int seed, params long[] shape) =>
        randn(shape, dtype: float64, generator: new Generator((ulong)seed));

    private static double* Pointer(Tensor tensor) => (double*)BlockKernels.Address(tensor);
}
