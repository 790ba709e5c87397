using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Data;

/// <summary>
/// Standard Fashion-MNIST/CIFAR augmentation: pad every side with zeros, crop a random window of
/// the original size, and flip horizontally with probability 1/2.
/// </summary>
/// <param name="CropPadding">Zero pixels added on each side before the random crop (0 = no crop).</param>
/// <param name="HorizontalFlip">Whether to flip each image left-right with probability 1/2.</param>
public sealed record Augmentation(int CropPadding = 2, bool HorizontalFlip = true)
{
    /// <summary>Random crop with 2-pixel zero padding and horizontal flip.</summary>
    public static Augmentation Standard { get; } = new();
}

/// <summary>How a <see cref="BatchLoader"/> turns images into batches.</summary>
public sealed record BatchOptions
{
    /// <summary>Images per batch.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Whether each epoch visits the images in a new order, a function of (Seed, epoch).</summary>
    public bool Shuffle { get; init; }

    /// <summary>Whether to drop a last batch smaller than <see cref="BatchSize"/>.</summary>
    public bool DropLast { get; init; }

    /// <summary>Random augmentation, or null for none.</summary>
    public Augmentation? Augmentation { get; init; }

    /// <summary>
    /// Zero-pad the images (in raw pixel values, before normalisation) to this height and width,
    /// e.g. 32 for CIFAR-style networks; null keeps the dataset's size.
    /// </summary>
    public int? PadTo { get; init; }

    /// <summary>The normalisation applied last (usually that of the training set).</summary>
    public required Normalization Normalization { get; init; }

    /// <summary>The seed of the shuffle and the augmentation.</summary>
    public ulong Seed { get; init; }
}

/// <summary>A batch of normalised float32 images [B, C, H, W] and int64 labels [B].</summary>
public sealed class Batch : IDisposable
{
    internal Batch(Tensor images, Tensor labels, int epoch, int index)
    {
        Images = images;
        Labels = labels;
        Epoch = epoch;
        Index = index;
    }

    /// <summary>The images, float32 [B, C, H, W].</summary>
    public Tensor Images { get; }

    /// <summary>The labels, int64 [B].</summary>
    public Tensor Labels { get; }

    /// <summary>Number of images.</summary>
    public int Size => (int)Labels.shape[0];

    /// <summary>The epoch this batch belongs to.</summary>
    public int Epoch { get; }

    /// <summary>The index of this batch within its epoch.</summary>
    public int Index { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Cuts a dataset into batches: per-epoch seeded shuffle, optional padding, augmentation and
/// normalisation. Every batch is a pure function of (seed, epoch, batch index), so a run resumed
/// in the middle of an epoch sees exactly the batches it would have seen.
/// </summary>
public sealed class BatchLoader : IDisposable
{
    private const ulong ShuffleStream = 1;
    private const ulong AugmentationStream = 2;

    private readonly Tensor _mean;
    private readonly Tensor _std;
    private readonly int _padTop, _padBottom, _padLeft, _padRight;
    private int _orderEpoch = -1;
    private int[] _order = [];

    /// <summary>Creates a loader over <paramref name="dataset"/>; the dataset must outlive it.</summary>
    public BatchLoader(ImageDataset dataset, BatchOptions options)
    {
        if (options.BatchSize <= 0)
            throw new ArgumentException($"Batch size must be positive, got {options.BatchSize}.", nameof(options));
        if (options.Augmentation is { CropPadding: < 0 } bad)
            throw new ArgumentException($"Crop padding must not be negative, got {bad.CropPadding}.", nameof(options));
        int height = options.PadTo ?? dataset.Height;
        int width = options.PadTo ?? dataset.Width;
        if (height < dataset.Height || width < dataset.Width)
            throw new ArgumentException($"PadTo {options.PadTo} is smaller than the {dataset.Height}x{dataset.Width} images.", nameof(options));

        Dataset = dataset;
        Options = options;
        OutputHeight = height;
        OutputWidth = width;
        _padTop = (height - dataset.Height) / 2;
        _padBottom = height - dataset.Height - _padTop;
        _padLeft = (width - dataset.Width) / 2;
        _padRight = width - dataset.Width - _padLeft;
        BatchesPerEpoch = options.DropLast ? dataset.Count / options.BatchSize : (dataset.Count + options.BatchSize - 1) / options.BatchSize;
        if (BatchesPerEpoch == 0)
            throw new ArgumentException($"{dataset.Description}: fewer images than one batch of {options.BatchSize} with DropLast.", nameof(options));
        (_mean, _std) = options.Normalization.ToTensors(dataset.Channels);
    }

    /// <summary>The dataset being batched.</summary>
    public ImageDataset Dataset { get; }

    /// <summary>The options.</summary>
    public BatchOptions Options { get; }

    /// <summary>Batches in one epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Height of the images in a batch.</summary>
    public int OutputHeight { get; }

    /// <summary>Width of the images in a batch.</summary>
    public int OutputWidth { get; }

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the images.</summary>
    public int[] Order(int epoch)
    {
        if (epoch != _orderEpoch)
        {
            _order = Options.Shuffle
                ? new DeterministicRandom(Options.Seed, ShuffleStream, (ulong)epoch).Permutation(Dataset.Count)
                : Enumerable.Range(0, Dataset.Count).ToArray();
            _orderEpoch = epoch;
        }
        return _order;
    }

    /// <summary>The batches of epoch <paramref name="epoch"/>, from <paramref name="firstBatch"/> on. Dispose each.</summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0)
    {
        for (int index = firstBatch; index < BatchesPerEpoch; index++)
            yield return GetBatch(epoch, index);
    }

    /// <summary>Batch <paramref name="index"/> of epoch <paramref name="epoch"/>.</summary>
    public Batch GetBatch(int epoch, int index)
    {
        if ((uint)index >= (uint)BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"An epoch has {BatchesPerEpoch} batches.");
        int[] order = Order(epoch);
        int start = index * Options.BatchSize;
        int size = Math.Min(Options.BatchSize, Dataset.Count - start);
        var selection = new long[size];
        for (int i = 0; i < size; i++)
            selection[i] = order[start + i];

        using var scope = torch.NewDisposeScope();
        var indices = torch.tensor(selection);
        var images = Dataset.Images.index_select(0, indices).to(ScalarType.Float32).div_(255);
        var augmentation = Options.Augmentation;
        int crop = augmentation?.CropPadding ?? 0;
        images = torch.nn.functional.pad(images, [_padLeft + crop, _padRight + crop, _padTop + crop, _padBottom + crop]);
        if (augmentation is not null)
        {
            var random = new DeterministicRandom(Options.Seed, AugmentationStream, (ulong)epoch, (ulong)index);
            var top = new long[size];
            var left = new long[size];
            var flip = new bool[size];
            for (int i = 0; i < size; i++)
            {
                top[i] = random.NextInt(2 * crop + 1);
                left[i] = random.NextInt(2 * crop + 1);
                flip[i] = augmentation.HorizontalFlip && random.NextBool();
            }
            images = CropAndFlip(images, top, left, flip, OutputHeight, OutputWidth);
        }
        images = images.sub_(_mean).div_(_std);
        var labels = Dataset.Labels.index_select(0, indices);
        return new Batch(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), epoch, index);
    }

    /// <summary>
    /// Crops image i of <paramref name="padded"/> [B, C, Hp, Wp] to rows top[i].. and columns
    /// left[i].. of the given size, mirrored left-right where flip[i]; two gathers, no per-pixel loop.
    /// </summary>
    internal static Tensor CropAndFlip(Tensor padded, long[] top, long[] left, bool[] flip, int height, int width)
    {
        using var scope = torch.NewDisposeScope();
        long batch = padded.shape[0], channels = padded.shape[1], paddedWidth = padded.shape[3];
        var rows = torch.tensor(top).unsqueeze(1) + torch.arange(height, ScalarType.Int64);
        var offsets = torch.tensor(left).unsqueeze(1);
        var ascending = torch.arange(width, ScalarType.Int64);
        var columns = torch.where(torch.tensor(flip).unsqueeze(1), offsets + (width - 1) - ascending, offsets + ascending);
        var pickedRows = padded.gather(2, rows.view(batch, 1, height, 1).expand(batch, channels, height, paddedWidth));
        var cropped = pickedRows.gather(3, columns.view(batch, 1, 1, width).expand(batch, channels, height, width));
        return cropped.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _mean.Dispose();
        _std.Dispose();
    }
}
