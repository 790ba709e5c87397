using System.Diagnostics;
using CeDsl.Data;
using Xunit.Abstractions;

namespace CeDsl.Training.Tests.Data;

/// <summary>The reader on the real files of Debian's dataset-fashion-mnist package.</summary>
public class FashionMnistDebianTests(ITestOutputHelper output)
{
    [FashionMnistFact]
    public void Reads_60000_training_and_10000_test_images_balanced_over_10_classes()
    {
        var clock = Stopwatch.StartNew();
        using var data = FashionMnist.Load();
        clock.Stop();
        output.WriteLine($"FashionMnist.Load: {clock.ElapsedMilliseconds} ms for 70,000 images");

        Assert.Equal(60_000, data.Train.Count);
        Assert.Equal(10_000, data.Test.Count);
        Assert.Equal(new long[] { 60_000, 1, 28, 28 }, data.Train.Images.shape);
        Assert.All(data.Train.CountPerClass(), n => Assert.Equal(6_000, n));
        Assert.All(data.Test.CountPerClass(), n => Assert.Equal(1_000, n));
        // The first training labels of Fashion-MNIST: ankle boot, T-shirt, T-shirt, dress, ...
        Assert.Equal(new[] { 9, 0, 0, 3, 0, 2, 7, 2, 5, 5 }, Enumerable.Range(0, 10).Select(data.Train.LabelAt));
        Assert.Equal("Fashion-MNIST train, /usr/share/datasets/fashion-mnist, 60,000 images", data.Train.Description);
    }

    [FashionMnistFact]
    public void Training_set_statistics_are_the_published_ones()
    {
        using var train = FashionMnist.LoadSplit(FashionMnist.DebianDirectory, DatasetSplit.Train);

        var normalization = Normalization.Of(train);

        // Widely published Fashion-MNIST normalisation constants: mean 0.2860, std 0.3530.
        Assert.Equal(0.2860, normalization.Mean[0], 4);
        Assert.Equal(0.3530, normalization.Std[0], 4);
        // The constants every run normalizes with are these, in float32, the precision batches are normalized in.
        Assert.Equal((float)normalization.Mean[0], (float)FashionMnist.Normalization.Mean[0]);
        Assert.Equal((float)normalization.Std[0], (float)FashionMnist.Normalization.Std[0]);
    }
}
