using System.Diagnostics;
using System.Globalization;
using CeDsl.Bench;
using CeDsl.Kernels;

namespace CeDsl.Training.Benchmarks;

/// <summary>
/// The block kernels' rates on one thread: the centred Gram matrix and dY X^T of 16-row blocks (forward and
/// backward pass 1), and the map of 16 and of 32 input rows to 16 (forward pass 2, backward pass 2), at the
/// row lengths of the zoo's feature maps, cycling through 64 blocks (0.2-13 MB per operand: what a pass over an
/// activation finds in the caches), the fastest of 5 rounds; then over the whole activations of the CE layer
/// benchmark, where the operands stream from beyond the caches.
/// </summary>
internal static unsafe class KernelRates
{
    private const int Rows = 16, Blocks = 64, Rounds = 5;
    private static readonly long[] Positions = [49, 64, 196, 256, 784, 1024, 3136];

    public static List<string> Measure()
    {
        var lines = new List<string>
        {
            "Block kernels, float32, 1 thread, 64 rotating blocks of 16 rows, fastest of 5 rounds: G multiply-adds/s.",
            "",
            Header("positions"),
            "|---:|---:|---:|---:|---:|",
        };
        foreach (long positions in Positions)
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"| {positions} | {Rates(positions, Blocks)} |"));
        lines.AddRange(
        [
            "",
            "The same kernels over the whole activations of the CE layer benchmark (every block of the activation once per round, so that the operands stream from beyond the caches; 1 thread, fastest of 5 rounds): G multiply-adds/s.",
            "",
            Header("activation (blocks, MB per operand)"),
            "|---|---:|---:|---:|---:|",
        ]);
        // The layer benchmark's activations, and rows of 28x28 between theirs; each as the passes run it (the maps
        // prefetch by BlockKernels.PrefetchDistance) and with the maps prefetching the next block whatever the rows.
        foreach (var shape in (LayerShape[])[.. LayerShape.All, new(32, 512, 28)])
        {
            long positions = (long)shape.Size * shape.Size;
            int blocks = shape.Batch * shape.Channels / Rows;
            string name = string.Create(CultureInfo.InvariantCulture,
                $"{shape.Batch}x{shape.Channels}x{shape.Size}x{shape.Size} ({blocks} blocks, {blocks * Rows * positions * sizeof(float) / 1e6:F1} MB)");
            lines.Add($"| {name} | {Rates(positions, blocks)} |");
            lines.Add($"| {name}, maps prefetching | {Rates(positions, blocks, mapsPrefetch: true)} |");
        }
        return lines;
    }

    private static string Header(string first) => $"| {first} | Gram (centred, symmetric) | dY X^T | map 16 -> 16 rows | map 32 -> 16 rows |";

    /// <summary>
    /// The four kernels' rates over <paramref name="blocks"/> blocks of 16 rows of <paramref name="positions"/>, as table cells;
    /// <paramref name="mapsPrefetch"/>: the maps prefetch the next block whatever <see cref="BlockKernels.PrefetchDistance{T}"/> says.
    /// </summary>
    private static string Rates(long positions, int blocks, bool mapsPrefetch = false)
    {
        var random = new Random(1);
        long size = (long)blocks * Rows * positions;
        var a = new float[size];
        var b = new float[size];
        var output = new float[size];
        for (long i = 0; i < size; i++)
        {
            a[i] = random.NextSingle();
            b[i] = random.NextSingle();
        }
        var centre = new float[Rows];
        var map = new float[2 * Rows * Rows];
        for (int i = 0; i < map.Length; i++)
            map[i] = random.NextSingle();
        var result = new double[Rows * Rows];
        fixed (float* xPointer = a, dyPointer = b, yPointer = output, meanPointer = centre, weightsPointer = map)
        fixed (double* sumsPointer = result)
        {
            // Addresses, not pointers: a lambda cannot capture a fixed pointer.
            nint x = (nint)xPointer, dy = (nint)dyPointer, y = (nint)yPointer, mean = (nint)meanPointer, weights = (nint)weightsPointer, sums = (nint)sumsPointer;
            float* Block(nint data, int block) => (float*)data + (long)block * Rows * positions;
            // As the passes do: where the operands stream from beyond the caches, the maps prefetch the next block's input and
            // output rows (short rows) or further along the same rows (long ones).
            long ahead = mapsPrefetch ? Rows * positions : BlockKernels.PrefetchDistance<float>(Rows, positions, blocks);
            // Where the maps prefetch whole blocks, the products prefetch the block they are about to read, as the passes do; a
            // row with the maps prefetching the next block whatever the rows leaves the products' cells to the row above.
            bool fetchBlock = BlockKernels.PrefetchesBlocks<float>(Rows, positions, blocks);
            void Fetch(nint data, int block)
            {
                if (fetchBlock)
                    BlockKernels.Prefetch(Block(data, block), Rows * positions, now: true);
            }
            string products = mapsPrefetch ? "- | -" : string.Create(CultureInfo.InvariantCulture,
                $"{Rate(positions, blocks, (Rows + 4.0) / 2 * Rows, block =>
                {
                    Fetch(x, block);
                    BlockKernels.Products(Block(x, block), (float*)mean, Rows, Block(x, block), (float*)mean, Rows, positions, symmetric: true, (double*)sums);
                }):F1} | " +
                $"{Rate(positions, blocks, Rows * Rows, block =>
                {
                    Fetch(dy, block);
                    Fetch(x, block);
                    BlockKernels.Products(Block(dy, block), null, Rows, Block(x, block), null, Rows, positions, symmetric: false, (double*)sums);
                }):F1}");
            double forward = Rate(positions, blocks, Rows * Rows, block =>
                BlockKernels.Map(Block(x, block), Rows, null, null, 0, Block(y, block), Rows, (float*)weights, null, positions, ahead));
            double backward = Rate(positions, blocks, 2 * Rows * Rows, block =>
                BlockKernels.Map(Block(dy, block), Rows, Block(x, block), (float*)mean, Rows, Block(y, block), Rows, (float*)weights, null, positions, ahead));
            return string.Create(CultureInfo.InvariantCulture, $"{products} | {forward:F1} | {backward:F1}");
        }
    }

    /// <summary>G multiply-adds/s of <paramref name="kernel"/> over the blocks in turn (<paramref name="perPosition"/> multiply-adds per position and call).</summary>
    private static double Rate(long positions, int blocks, double perPosition, Action<int> kernel)
    {
        long calls = Math.Max(blocks, 200_000_000L / (long)(perPosition * positions));
        double fastest = double.MaxValue;
        for (int round = 0; round <= Rounds; round++)
        {
            long start = Stopwatch.GetTimestamp();
            for (long call = 0; call < calls; call++)
                kernel((int)(call % blocks));
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (round > 0) // the first round warms up
                fastest = Math.Min(fastest, seconds);
        }
        return calls * perPosition * positions / fastest / 1e9;
    }
}
