using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Data;

/// <summary>Which part of a dataset a set of images is.</summary>
public enum DatasetSplit
{
    /// <summary>The training images.</summary>
    Train,

    /// <summary>The held-out test images.</summary>
    Test,
}

/// <summary>
/// A labelled set of 8-bit images held as one native uint8 tensor [N, C, H, W] and its int64
/// labels [N]; it says what it is (name, split, where it came from) so a caller can print it.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    private readonly byte[] _labels;
    private string? _contentHash;

    /// <summary>
    /// Creates a dataset from row-major pixels [count, channels, height, width] and one label per image.
    /// </summary>
    /// <exception cref="ArgumentException">The sizes disagree or a label is not a class index.</exception>
    public ImageDataset(string name, DatasetSplit split, string source, bool isEmbeddedSubset,
        byte[] pixels, int count, int channels, int height, int width, byte[] labels, IReadOnlyList<string> classNames)
    {
        if (count <= 0 || channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"{name} {split}: sizes must be positive, got {count} x {channels} x {height} x {width}.");
        if (pixels.LongLength != (long)count * channels * height * width)
            throw new ArgumentException($"{name} {split}: {count} x {channels} x {height} x {width} images need {(long)count * channels * height * width} bytes, got {pixels.LongLength}.", nameof(pixels));
        if (classNames.Count is < 1 or > 256)
            throw new ArgumentException($"{name} {split}: byte labels allow 1 to 256 classes, got {classNames.Count}.", nameof(classNames));
        if (labels.Length != count)
            throw new ArgumentException($"{name} {split}: {count} images but {labels.Length} labels.", nameof(labels));
        int badLabel = labels.AsSpan().IndexOfAnyExceptInRange((byte)0, (byte)(classNames.Count - 1));
        if (badLabel >= 0)
            throw new ArgumentException($"{name} {split}: label {labels[badLabel]} at index {badLabel} is outside 0..{classNames.Count - 1}.", nameof(labels));

        Name = name;
        Split = split;
        Source = source;
        IsEmbeddedSubset = isEmbeddedSubset;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        ClassNames = classNames;
        _labels = labels;
        // The dataset owns its tensors: a dispose scope open around its creation must not take them.
        Images = torch.tensor(pixels, [count, channels, height, width], ScalarType.Byte).DetachFromDisposeScope();
        Labels = torch.tensor(labels, [count], ScalarType.Byte).to(ScalarType.Int64, disposeAfter: true).DetachFromDisposeScope();
    }

    /// <summary>The dataset's name, e.g. "Fashion-MNIST".</summary>
    public string Name { get; }

    /// <summary>Training or test images.</summary>
    public DatasetSplit Split { get; }

    /// <summary>Where the images came from: a directory, or "embedded subset".</summary>
    public string Source { get; }

    /// <summary>True for the small subset shipped inside the assembly.</summary>
    public bool IsEmbeddedSubset { get; }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height in pixels.</summary>
    public int Height { get; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; }

    /// <summary>The class names, indexed by label.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The raw pixels, uint8 [N, C, H, W], 0..255.</summary>
    public Tensor Images { get; }

    /// <summary>The labels, int64 [N].</summary>
    public Tensor Labels { get; }

    /// <summary>The label of image <paramref name="index"/>.</summary>
    public int LabelAt(int index) => _labels[index];

    /// <summary>A one-line description such as "Fashion-MNIST train, embedded subset, 1,000 images".</summary>
    public string Description => string.Create(CultureInfo.InvariantCulture,
        $"{Name} {Split.ToString().ToLowerInvariant()}, {Source}, {Count:N0} images");

    /// <summary>
    /// SHA-256 of the image shape, the pixels and the labels, as 64 lower-case hex digits: equal for
    /// the same images in the same order, wherever they were read from. Computed once.
    /// </summary>
    public string ContentHash()
    {
        if (_contentHash is null)
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(Encoding.UTF8.GetBytes($"{Count}x{Channels}x{Height}x{Width}\n"));
            using (var contiguous = Images.contiguous())
                TensorBytes.ForEachChunk(contiguous, (chunk, _) => hash.AppendData(chunk));
            hash.AppendData(_labels);
            _contentHash = Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        return _contentHash;
    }

    /// <summary>The number of images of each class, indexed by label.</summary>
    public int[] CountPerClass()
    {
        var counts = new int[ClassNames.Count];
        foreach (byte label in _labels)
            counts[label]++;
        return counts;
    }

    /// <summary>The indices of the first <paramref name="perClass"/> images of each class, in file order.</summary>
    /// <exception cref="InvalidOperationException">A class has fewer images than that.</exception>
    public int[] FirstIndicesPerClass(int perClass)
    {
        var taken = new int[ClassNames.Count];
        var indices = new List<int>(perClass * ClassNames.Count);
        for (int i = 0; i < _labels.Length && indices.Count < perClass * ClassNames.Count; i++)
        {
            if (taken[_labels[i]] < perClass)
            {
                taken[_labels[i]]++;
                indices.Add(i);
            }
        }
        int shortClass = Array.FindIndex(taken, n => n < perClass);
        if (shortClass >= 0)
            throw new InvalidOperationException($"{Description}: class {shortClass} ({ClassNames[shortClass]}) has only {taken[shortClass]} images, {perClass} requested.");
        return [.. indices];
    }

    /// <summary>The pixels of the given images, row-major [indices.Length, C, H, W].</summary>
    public byte[] PixelsOf(IReadOnlyList<int> indices)
    {
        using var scope = torch.NewDisposeScope();
        using var index = torch.tensor(indices.Select(i => (long)i).ToArray());
        return Images.index_select(0, index).contiguous().bytes.ToArray();
    }

    /// <summary>The labels of the given images.</summary>
    public byte[] LabelsOf(IReadOnlyList<int> indices) => [.. indices.Select(i => _labels[i])];

    /// <inheritdoc />
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
