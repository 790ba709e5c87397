using System.Reflection;

namespace CeDsl.Data;

/// <summary>A training set and a test set; disposing it disposes both.</summary>
/// <param name="Train">The training images.</param>
/// <param name="Test">The test images.</param>
public sealed record ImageDatasetPair(ImageDataset Train, ImageDataset Test) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}

/// <summary>
/// Fashion-MNIST (Xiao et al., 2017): 28x28 grayscale images of 10 clothing classes, 60,000 for
/// training and 10,000 for testing, read from the four IDX gzip files, or a small subset of them
/// embedded in this assembly.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DebianDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The dataset's name as printed in descriptions.</summary>
    public const string Name = "Fashion-MNIST";

    /// <summary>Image height and width.</summary>
    public const int ImageSize = 28;

    /// <summary>Channels of an image (grayscale).</summary>
    public const int Channels = 1;

    /// <summary>The number of classes (10).</summary>
    public static int Classes => ClassNames.Count;

    /// <summary>
    /// The mean and population standard deviation of all pixels (scaled to [0, 1]) of the 60,000 training
    /// images, as <see cref="Data.Normalization.Of"/> computes them (to float32, the precision batches are normalized in).
    /// Normalizing with these, whatever subset
    /// a run trains on, evaluates any network exactly as it was trained, folded ones too (which carry no
    /// training state).
    /// </summary>
    public static Normalization Normalization { get; } = new([0.2860405969887955], [0.35302424457803794]);

    /// <summary>Images of each class in the embedded training subset (the first ones of each class in the training file).</summary>
    public const int EmbeddedTrainPerClass = 100;

    /// <summary>Images of each class in the embedded test subset (the first ones of each class in the test file).</summary>
    public const int EmbeddedTestPerClass = 50;

    /// <summary>The description used as <see cref="ImageDataset.Source"/> for the embedded subset.</summary>
    public const string EmbeddedSource = "embedded subset";

    /// <summary>The class names, indexed by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The file name of the images or labels of a split, e.g. "train-images-idx3-ubyte.gz".</summary>
    public static string FileName(DatasetSplit split, bool images) =>
        (split == DatasetSplit.Train ? "train" : "t10k") + (images ? "-images-idx3-ubyte.gz" : "-labels-idx1-ubyte.gz");

    /// <summary>
    /// Reads both splits from <paramref name="directory"/> (default: <see cref="DebianDirectory"/>).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">One of the four files is missing.</exception>
    /// <exception cref="InvalidDataException">A file is damaged or is not what it should be; the message names it.</exception>
    public static ImageDatasetPair Load(string? directory = null)
    {
        directory ??= DebianDirectory;
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException(
                $"Fashion-MNIST directory '{directory}' does not exist (on Debian: apt-get install dataset-fashion-mnist; or use the embedded subset).");
        var train = LoadSplit(directory, DatasetSplit.Train);
        try
        {
            return new ImageDatasetPair(train, LoadSplit(directory, DatasetSplit.Test));
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    /// <summary>Reads one split from <paramref name="directory"/>.</summary>
    /// <inheritdoc cref="Load" path="/exception"/>
    public static ImageDataset LoadSplit(string directory, DatasetSplit split)
    {
        string imagesPath = Path.Combine(directory, FileName(split, images: true));
        string labelsPath = Path.Combine(directory, FileName(split, images: false));
        var images = IdxFile.ReadGzip(imagesPath, IdxFile.ImagesMagicNumber);
        var labels = IdxFile.ReadGzip(labelsPath, IdxFile.LabelsMagicNumber);
        return FromIdx(images, imagesPath, labels, labelsPath, split, Path.GetFullPath(directory), isEmbeddedSubset: false);
    }

    /// <summary>
    /// The subset embedded in this assembly: the first <see cref="EmbeddedTrainPerClass"/> training
    /// images of each class (1,000) and the first <see cref="EmbeddedTestPerClass"/> test images of
    /// each class (500), read from IDX gzip resources by the same reader as the full files.
    /// </summary>
    public static ImageDatasetPair LoadEmbeddedSubset()
    {
        var train = LoadEmbeddedSplit(DatasetSplit.Train);
        try
        {
            return new ImageDatasetPair(train, LoadEmbeddedSplit(DatasetSplit.Test));
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    /// <summary>The name of the manifest resource that holds a file of the embedded subset.</summary>
    public static string EmbeddedResourceName(DatasetSplit split, bool images) => "CeDsl.Data.Embedded." + FileName(split, images);

    private static ImageDataset LoadEmbeddedSplit(DatasetSplit split)
    {
        var images = ReadEmbedded(split, images: true, IdxFile.ImagesMagicNumber);
        var labels = ReadEmbedded(split, images: false, IdxFile.LabelsMagicNumber);
        return FromIdx(images, EmbeddedResourceName(split, true), labels, EmbeddedResourceName(split, false),
            split, EmbeddedSource, isEmbeddedSubset: true);
    }

    private static IdxArray ReadEmbedded(DatasetSplit split, bool images, int magicNumber)
    {
        string name = EmbeddedResourceName(split, images);
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The embedded resource '{name}' is missing from {Assembly.GetExecutingAssembly().GetName().Name}.");
        return IdxFile.ReadGzip(stream, name, magicNumber);
    }

    private static ImageDataset FromIdx(IdxArray images, string imagesName, IdxArray labels, string labelsName,
        DatasetSplit split, string source, bool isEmbeddedSubset)
    {
        int[] dims = images.Dimensions;
        if (dims[1] != ImageSize || dims[2] != ImageSize)
            throw new InvalidDataException($"IDX file '{imagesName}': images are {dims[1]}x{dims[2]}, Fashion-MNIST images are {ImageSize}x{ImageSize}.");
        if (labels.Dimensions[0] != dims[0])
            throw new InvalidDataException($"IDX file '{labelsName}': {labels.Dimensions[0]} labels, but '{imagesName}' has {dims[0]} images.");
        int bad = labels.Data.AsSpan().IndexOfAnyExceptInRange((byte)0, (byte)(ClassNames.Count - 1));
        if (bad >= 0)
            throw new InvalidDataException($"IDX file '{labelsName}': label {labels.Data[bad]} at index {bad} is outside 0..{ClassNames.Count - 1}.");
        return new ImageDataset(Name, split, source, isEmbeddedSubset, images.Data, dims[0], Channels, dims[1], dims[2], labels.Data, ClassNames);
    }
}
