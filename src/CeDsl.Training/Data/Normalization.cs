using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Data;

/// <summary>
/// Per-channel normalisation of pixels scaled to [0, 1]: (x / 255 - Mean) / Std.
/// </summary>
/// <param name="Mean">Mean of each channel, in [0, 1] units.</param>
/// <param name="Std">Standard deviation of each channel, in [0, 1] units; positive.</param>
public sealed record Normalization(IReadOnlyList<double> Mean, IReadOnlyList<double> Std)
{
    /// <summary>
    /// The exact per-channel mean and population standard deviation of all pixels of
    /// <paramref name="dataset"/> (sums in 64/128-bit integers, so the result does not depend on
    /// summation order).
    /// </summary>
    public static Normalization Of(ImageDataset dataset)
    {
        int channels = dataset.Channels;
        var sums = new Int128[channels];
        var squares = new Int128[channels];
        const int imagesPerChunk = 4096;
        for (int start = 0; start < dataset.Count; start += imagesPerChunk)
        {
            using var scope = torch.NewDisposeScope();
            var chunk = dataset.Images.narrow(0, start, Math.Min(imagesPerChunk, dataset.Count - start)).to(ScalarType.Int64);
            long[] chunkSums = chunk.sum([0, 2, 3]).data<long>().ToArray();
            long[] chunkSquares = chunk.square().sum([0, 2, 3]).data<long>().ToArray();
            for (int c = 0; c < channels; c++)
            {
                sums[c] += chunkSums[c];
                squares[c] += chunkSquares[c];
            }
        }

        Int128 n = (Int128)dataset.Count * dataset.Height * dataset.Width;
        var mean = new double[channels];
        var std = new double[channels];
        for (int c = 0; c < channels; c++)
        {
            // n^2 * 255^2 * var = n * sum(x^2) - sum(x)^2, exact in integers.
            Int128 scaledVariance = n * squares[c] - sums[c] * sums[c];
            mean[c] = (double)sums[c] / (double)n / 255.0;
            std[c] = Math.Sqrt((double)scaledVariance) / (double)n / 255.0;
        }
        return new Normalization(mean, std);
    }

    /// <summary>Checks the values and returns [1, C, 1, 1] float32 tensors of the mean and std.</summary>
    internal (Tensor Mean, Tensor Std) ToTensors(int channels)
    {
        if (Mean.Count != channels || Std.Count != channels)
            throw new ArgumentException($"Normalization has {Mean.Count} means and {Std.Count} standard deviations for {channels}-channel images.");
        if (Std.Any(s => !(s > 0)))
            throw new ArgumentException($"Normalization standard deviations must be positive, got [{string.Join(", ", Std)}].");
        var mean = torch.tensor(Mean.Select(m => (float)m).ToArray()).view(1, channels, 1, 1).DetachFromDisposeScope();
        var std = torch.tensor(Std.Select(s => (float)s).ToArray()).view(1, channels, 1, 1).DetachFromDisposeScope();
        return (mean, std);
    }
}
