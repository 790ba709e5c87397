using System.Diagnostics;
using System.Globalization;
using CeDsl.Kernels;

namespace CeDsl.Training.Benchmarks;

/// <summary>
/// The block kernels' rates on one thread: the centred Gram matrix and dY X^T of 16-row blocks (forward and
/// backward pass 1), and the map of 16 and of 32 input rows to 16 (forward pass 2, backward pass 2), at the
/// row lengths of the zoo's feature maps, cycling through 64 blocks (0.2-13 MB per operand: what a pass over an
/// activation finds in the caches), the fastest of 5 rounds.
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
            "| positions | Gram (centred, symmetric) | dY X^T | map 16 -> 16 rows | map 32 -> 16 rows |",
            "|---:|---:|---:|---:|---:|",
        };
        var random = new Random(1);
        foreach (long positions in Positions)
        {
            long size = Blocks * Rows * positions;
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
                double gram = Rate(positions, (Rows + 4.0) / 2 * Rows, block =>
                    BlockKernels.Products(Block(x, block), (float*)mean, Rows, Block(x, block), (float*)mean, Rows, positions, symmetric: true, (double*)sums));
                double gradient = Rate(positions, Rows * Rows, block =>
                    BlockKernels.Products(Block(dy, block), null, Rows, Block(x, block), null, Rows, positions, symmetric: false, (double*)sums));
                double forward = Rate(positions, Rows * Rows, block =>
                    BlockKernels.Map(Block(x, block), Rows, null, null, 0, Block(y, block), Rows, (float*)weights, null, positions));
                double backward = Rate(positions, 2 * Rows * Rows, block =>
                    BlockKernels.Map(Block(dy, block), Rows, Block(x, block), (float*)mean, Rows, Block(y, block), Rows, (float*)weights, null, positions));
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"| {positions} | {gram:F1} | {gradient:F1} | {forward:F1} | {backward:F1} |"));
            }
        }
        return lines;
    }

    /// <summary>G multiply-adds/s of <paramref name="kernel"/> over the blocks in turn (<paramref name="perPosition"/> multiply-adds per position and call).</summary>
    private static double Rate(long positions, double perPosition, Action<int> kernel)
    {
        long calls = Math.Max(Blocks, 200_000_000L / (long)(perPosition * positions));
        double fastest = double.MaxValue;
        for (int round = 0; round <= Rounds; round++)
        {
            long start = Stopwatch.GetTimestamp();
            for (long call = 0; call < calls; call++)
                kernel((int)(call % Blocks));
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (round > 0) // the first round warms up
                fastest = Math.Min(fastest, seconds);
        }
        return calls * perPosition * positions / fastest / 1e9;
    }
}
