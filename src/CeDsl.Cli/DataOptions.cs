using System.CommandLine;
using System.Globalization;
using CeDsl.Data;

namespace CeDsl.Cli;

/// <summary>The Fashion-MNIST images a command reads, and how every command prepares them for a network.</summary>
internal sealed class DataOptions
{
    /// <summary>The 28x28 images are zero-padded to 32x32 (CIFAR-style networks; the ImageNet ones accept it too).</summary>
    public const int PadTo = 32;

    private readonly bool _withTrain;

    public DataOptions(bool withTrain)
    {
        _withTrain = withTrain;
        Data = CliOptions.Path("--data",
            $"Directory with the four Fashion-MNIST IDX gzip files [default: {FashionMnist.DebianDirectory} when it exists, else the embedded subset]", "dir");
        Embedded = new Option<bool>("--embedded") { Description = "Use the small subset embedded in cedsl (1,000 training, 500 test images)" };
        LimitTrain = CliOptions.OptionalInteger("--limit-train", "Train on the first N training images only", "N", 1, "must be positive");
        LimitTest = CliOptions.OptionalInteger("--limit-test", "Evaluate on the first N test images only", "N", 1, "must be positive");
    }

    public Option<string?> Data { get; }

    public Option<bool> Embedded { get; }

    public Option<int?> LimitTrain { get; }

    public Option<int?> LimitTest { get; }

    public void AddTo(Command command)
    {
        command.Add(Data);
        command.Add(Embedded);
        if (_withTrain)
            command.Add(LimitTrain);
        command.Add(LimitTest);
    }

    /// <summary>
    /// Loads the selected images and prints which ones they are. The test split is always loaded;
    /// the training split only for commands that train.
    /// </summary>
    /// <exception cref="UserException">The directory or a file is missing or damaged (the message names it).</exception>
    public LoadedData Load(ParseResult parse, TextWriter output)
    {
        string? directory = parse.GetValue(Data);
        if (directory is not null && parse.GetValue(Embedded))
            throw new UserException("--data and --embedded exclude each other: choose one source of images.");
        bool embedded = parse.GetValue(Embedded) || (directory is null && !Directory.Exists(FashionMnist.DebianDirectory));
        directory ??= FashionMnist.DebianDirectory;
        ImageDataset? train = null, test = null;
        try
        {
            if (embedded)
            {
                var pair = FashionMnist.LoadEmbeddedSubset();
                (train, test) = (pair.Train, pair.Test);
            }
            else
            {
                if (File.Exists(directory))
                    throw new UserException($"--data: '{directory}' is a file; give the directory that holds the four IDX gzip files ({FashionMnist.FileName(DatasetSplit.Train, images: true)}, ...).");
                if (!Directory.Exists(directory))
                    throw new UserException($"--data: directory '{directory}' does not exist (on Debian: apt-get install dataset-fashion-mnist; or use --embedded).");
                test = FashionMnist.LoadSplit(directory, DatasetSplit.Test);
                if (_withTrain)
                    train = FashionMnist.LoadSplit(directory, DatasetSplit.Train);
            }
            if (!_withTrain)
            {
                train?.Dispose();
                train = null;
            }
            var data = new LoadedData(
                train is null ? null : First(ref train, parse.GetValue(LimitTrain), output),
                First(ref test, parse.GetValue(LimitTest), output));
            if (embedded)
                output.WriteLine($"(the embedded subset: the first {FashionMnist.EmbeddedTrainPerClass} training and {FashionMnist.EmbeddedTestPerClass} test images of each class; pass --data for the full set)");
            return data;
        }
        catch
        {
            train?.Dispose();
            test?.Dispose();
            throw;
        }
    }

    /// <summary>The first <paramref name="limit"/> images of <paramref name="dataset"/> (it is replaced), and prints what is used.</summary>
    private static ImageDataset First(ref ImageDataset dataset, int? limit, TextWriter output)
    {
        string split = dataset.Split == DatasetSplit.Train ? "train" : "test ";
        if (limit is not { } count || count >= dataset.Count)
        {
            output.WriteLine($"{split}: {dataset.Description}");
            return dataset;
        }
        int[] indices = [.. Enumerable.Range(0, count)];
        var subset = new ImageDataset(dataset.Name, dataset.Split, dataset.Source, dataset.IsEmbeddedSubset, dataset.PixelsOf(indices),
            count, dataset.Channels, dataset.Height, dataset.Width, dataset.LabelsOf(indices), dataset.ClassNames);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{split}: {dataset.Description}, using the first {count:N0}"));
        dataset.Dispose();
        dataset = subset;
        return subset;
    }
}

/// <summary>The images a command works on; disposing disposes them.</summary>
internal sealed record LoadedData(ImageDataset? Train, ImageDataset Test) : IDisposable
{
    public ImageDataset TrainOrThrow => Train ?? throw new InvalidOperationException("This command did not load training images.");

    public void Dispose()
    {
        Train?.Dispose();
        Test.Dispose();
    }
}
