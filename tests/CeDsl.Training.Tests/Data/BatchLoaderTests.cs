using CeDsl.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Data;

public class BatchLoaderTests
{
    private const int Count = 10, Size = 6;

    /// <summary>10 images of 1x6x6 with seeded random pixels; image i has label i % 3.</summary>
    private static (ImageDataset Dataset, byte[] Pixels) Synthetic()
    {
        var pixels = new byte[Count * Size * Size];
        new Random(7).NextBytes(pixels);
        var labels = Enumerable.Range(0, Count).Select(i => (byte)(i % 3)).ToArray();
        return (new ImageDataset("Synthetic", DatasetSplit.Train, "test", false, pixels, Count, 1, Size, Size, labels, ["a", "b", "c"]), pixels);
    }

    private static readonly Normalization Unit = new([0.0], [1.0]);

    [Fact]
    public void Normalization_is_the_population_mean_and_std_of_pixels_scaled_to_0_1()
    {
        var (dataset, pixels) = Synthetic();
        using var _ = dataset;

        var normalization = Normalization.Of(dataset);

        double mean = pixels.Average(p => p / 255.0);
        double std = Math.Sqrt(pixels.Average(p => (p / 255.0 - mean) * (p / 255.0 - mean)));
        Assert.Equal(mean, normalization.Mean[0], 12);
        Assert.Equal(std, normalization.Std[0], 12);
    }

    [Fact]
    public void Unshuffled_batches_are_the_normalised_images_in_order_with_a_short_last_batch()
    {
        var (dataset, pixels) = Synthetic();
        using var _ = dataset;
        var normalization = new Normalization([0.25], [0.5]);
        using var loader = new BatchLoader(dataset, new BatchOptions { BatchSize = 4, Normalization = normalization });

        Assert.Equal(3, loader.BatchesPerEpoch);
        var batches = loader.Epoch(0).ToList();
        Assert.Equal(new[] { 4, 4, 2 }, batches.Select(b => b.Size));
        float[] all = [.. batches.SelectMany(b => b.Images.data<float>().ToArray())];
        float[] expected = [.. pixels.Select(p => (float)((p / 255f - 0.25f) / 0.5f))];
        Assert.Equal(expected, all);
        Assert.Equal(Enumerable.Range(0, Count).Select(i => (long)(i % 3)), batches.SelectMany(b => b.Labels.data<long>().ToArray()));
        Assert.Equal(ScalarType.Float32, batches[0].Images.dtype);
        batches.ForEach(b => b.Dispose());

        using var dropLast = new BatchLoader(dataset, new BatchOptions { BatchSize = 4, DropLast = true, Normalization = normalization });
        Assert.Equal(2, dropLast.BatchesPerEpoch);
    }

    [Fact]
    public void Padding_to_32_centres_the_image_in_zero_pixels_before_normalisation()
    {
        var (dataset, pixels) = Synthetic();
        using var _ = dataset;
        var normalization = new Normalization([0.5], [0.25]);
        using var loader = new BatchLoader(dataset, new BatchOptions { BatchSize = Count, PadTo = 10, Normalization = normalization });

        using var batch = loader.GetBatch(0, 0);

        Assert.Equal(new long[] { Count, 1, 10, 10 }, batch.Images.shape);
        float[] values = batch.Images.data<float>().ToArray();
        for (int n = 0; n < Count; n++)
        for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++)
        {
            bool inside = y is >= 2 and < 8 && x is >= 2 and < 8;
            float raw = inside ? pixels[n * 36 + (y - 2) * 6 + (x - 2)] / 255f : 0f;
            Assert.Equal((raw - 0.5f) / 0.25f, values[n * 100 + y * 10 + x]);
        }
    }

    [Fact]
    public void Shuffle_is_a_permutation_fixed_by_seed_and_epoch()
    {
        var (dataset, _) = Synthetic();
        using var __ = dataset;
        using var a = new BatchLoader(dataset, new BatchOptions { Shuffle = true, Seed = 11, Normalization = Unit });
        using var b = new BatchLoader(dataset, new BatchOptions { Shuffle = true, Seed = 11, Normalization = Unit });
        using var other = new BatchLoader(dataset, new BatchOptions { Shuffle = true, Seed = 12, Normalization = Unit });

        int[] epoch0 = [.. a.Order(0)];
        int[] epoch1 = [.. a.Order(1)];

        Assert.Equal(Enumerable.Range(0, Count), epoch0.Order());
        Assert.Equal(Enumerable.Range(0, Count), epoch1.Order());
        Assert.NotEqual(epoch0, epoch1);
        Assert.Equal(epoch1, b.Order(1));
        Assert.Equal(epoch0, b.Order(0));
        Assert.NotEqual(epoch0, other.Order(0));
    }

    [Fact]
    public void Augmented_batches_are_deterministic_given_seed_epoch_and_index()
    {
        var (dataset, _) = Synthetic();
        using var __ = dataset;
        BatchOptions options = new() { BatchSize = 4, Shuffle = true, Seed = 3, Augmentation = Augmentation.Standard, Normalization = Unit };
        using var first = new BatchLoader(dataset, options);
        using var second = new BatchLoader(dataset, options);
        using var otherSeed = new BatchLoader(dataset, options with { Seed = 4 });

        var sequential = first.Epoch(1).ToList();
        using var randomAccess = second.GetBatch(1, 2);
        using var otherEpoch = second.GetBatch(2, 2);
        using var differentSeed = otherSeed.GetBatch(1, 2);

        Assert.Equal(sequential[2].Labels.data<long>().ToArray(), randomAccess.Labels.data<long>().ToArray());
        Assert.Equal(sequential[2].Images.data<float>().ToArray(), randomAccess.Images.data<float>().ToArray());
        Assert.NotEqual(sequential[2].Images.data<float>().ToArray(), otherEpoch.Images.data<float>().ToArray());
        Assert.NotEqual(sequential[2].Images.data<float>().ToArray(), differentSeed.Images.data<float>().ToArray());
        sequential.ForEach(b => b.Dispose());
    }

    [Fact]
    public void Every_augmented_image_is_a_2_pixel_crop_of_the_zero_padded_image_possibly_mirrored_and_all_variants_occur()
    {
        var (dataset, pixels) = Synthetic();
        using var __ = dataset;
        using var loader = new BatchLoader(dataset, new BatchOptions { BatchSize = Count, Seed = 5, Augmentation = Augmentation.Standard, Normalization = Unit });
        var seen = new HashSet<(int Top, int Left, bool Flip)>();

        for (int epoch = 0; epoch < 40; epoch++)
        {
            using var batch = loader.GetBatch(epoch, 0);
            float[] values = batch.Images.data<float>().ToArray();
            for (int n = 0; n < Count; n++)
            {
                var image = values.AsSpan(n * 36, 36).ToArray();
                var matches = Variants().Where(v => image.SequenceEqual(Expected(pixels, n, v.Top, v.Left, v.Flip))).ToList();
                Assert.NotEmpty(matches);
                if (matches.Count == 1)
                    seen.Add(matches[0]);
            }
        }

        // 400 draws over 50 variants: each is missing with probability (49/50)^400 < 4e-4.
        Assert.Equal(50, seen.Count);

        static IEnumerable<(int Top, int Left, bool Flip)> Variants() =>
            from top in Enumerable.Range(0, 5) from left in Enumerable.Range(0, 5) from flip in new[] { false, true } select (top, left, flip);
    }

    /// <summary>Crop at (top, left) of the image padded by 2 zero pixels, then mirror: a per-pixel reference.</summary>
    private static float[] Expected(byte[] pixels, int n, int top, int left, bool flip)
    {
        var result = new float[Size * Size];
        for (int y = 0; y < Size; y++)
        for (int x = 0; x < Size; x++)
        {
            int sourceX = flip ? Size - 1 - x : x;
            int py = y + top - 2, px = sourceX + left - 2;
            bool inside = py is >= 0 and < Size && px is >= 0 and < Size;
            result[y * Size + x] = inside ? pixels[n * 36 + py * Size + px] / 255f : 0f;
        }
        return result;
    }

    [Fact]
    public void Crop_and_flip_matches_a_per_pixel_reference_on_several_channels()
    {
        using var scope = torch.NewDisposeScope();
        var padded = torch.arange(2 * 3 * 7 * 8, ScalarType.Float32).view(2, 3, 7, 8);
        long[] top = [0, 2];
        long[] left = [3, 1];
        bool[] flip = [true, false];

        var cropped = BatchLoader.CropAndFlip(padded, top, left, flip, height: 4, width: 5);

        float[] values = cropped.data<float>().ToArray();
        for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++)
        {
            int sourceX = (int)left[n] + (flip[n] ? 4 - x : x);
            int sourceY = (int)top[n] + y;
            Assert.Equal(((n * 3 + c) * 7 + sourceY) * 8 + sourceX, values[((n * 3 + c) * 4 + y) * 5 + x]);
        }
    }

    [Fact]
    public void Bad_options_are_clear_errors()
    {
        var (dataset, _) = Synthetic();
        using var __ = dataset;
        Assert.Contains("Batch size", Assert.Throws<ArgumentException>(() => new BatchLoader(dataset, new BatchOptions { BatchSize = 0, Normalization = Unit })).Message);
        Assert.Contains("PadTo 4", Assert.Throws<ArgumentException>(() => new BatchLoader(dataset, new BatchOptions { PadTo = 4, Normalization = Unit })).Message);
        Assert.Contains("positive", Assert.Throws<ArgumentException>(() => new BatchLoader(dataset, new BatchOptions { Normalization = new([0.1], [0.0]) })).Message);
        Assert.Contains("1-channel", Assert.Throws<ArgumentException>(() => new BatchLoader(dataset, new BatchOptions { Normalization = new([0.1, 0.2], [1, 1]) })).Message);
    }
}
