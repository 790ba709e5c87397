using System.IO.Compression;
using System.Runtime.CompilerServices;
using CeDsl.Data;

namespace CeDsl.Training.Tests.Data;

public class EmbeddedSubsetTests
{
    [Fact]
    public void Embedded_subset_has_the_documented_counts_and_is_class_balanced()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();

        Assert.Equal(DatasetSplit.Train, data.Train.Split);
        Assert.Equal(DatasetSplit.Test, data.Test.Split);
        Assert.True(data.Train.IsEmbeddedSubset);
        Assert.True(data.Test.IsEmbeddedSubset);
        Assert.Equal(1000, data.Train.Count);
        Assert.Equal(500, data.Test.Count);
        Assert.All(data.Train.CountPerClass(), n => Assert.Equal(100, n));
        Assert.All(data.Test.CountPerClass(), n => Assert.Equal(50, n));
        Assert.Equal(new long[] { 1000, 1, 28, 28 }, data.Train.Images.shape);
        Assert.Equal("Fashion-MNIST train, embedded subset, 1,000 images", data.Train.Description);
        Assert.Equal("Fashion-MNIST test, embedded subset, 500 images", data.Test.Description);
    }

    [Fact]
    public void A_dataset_loaded_inside_a_dispose_scope_outlives_it()
    {
        ImageDatasetPair data;
        using (var scope = TorchSharp.torch.NewDisposeScope())
            data = FashionMnist.LoadEmbeddedSubset();
        using var _ = data;

        Assert.Equal(1000 * 784, data.Train.Images.bytes.Length);
        Assert.Equal(500, data.Test.Labels.data<long>().ToArray().Length);
    }

    [Fact]
    public void Embedded_resources_are_small()
    {
        var assembly = typeof(FashionMnist).Assembly;
        long total = 0;
        foreach (var split in new[] { DatasetSplit.Train, DatasetSplit.Test })
        foreach (bool images in new[] { true, false })
        {
            using var stream = assembly.GetManifestResourceStream(FashionMnist.EmbeddedResourceName(split, images));
            Assert.NotNull(stream);
            total += stream.Length;
        }
        Assert.InRange(total, 1, 800_000);
    }

    /// <summary>
    /// The test-only generator of the embedded subset (see src/CeDsl.Training/Data/Embedded/README.md):
    /// it always checks that the embedded files hold exactly the first images of each class of the
    /// Debian files, and rewrites them when CEDSL_WRITE_EMBEDDED_SUBSET=1.
    /// </summary>
    [FashionMnistFact]
    public void Embedded_subset_is_the_first_images_of_each_class_of_the_Debian_files()
    {
        bool write = Environment.GetEnvironmentVariable("CEDSL_WRITE_EMBEDDED_SUBSET") == "1";
        foreach (var (split, perClass) in new[] { (DatasetSplit.Train, FashionMnist.EmbeddedTrainPerClass), (DatasetSplit.Test, FashionMnist.EmbeddedTestPerClass) })
        {
            using var full = FashionMnist.LoadSplit(FashionMnist.DebianDirectory, split);
            int[] selection = full.FirstIndicesPerClass(perClass);
            var images = new IdxArray([selection.Length, 28, 28], full.PixelsOf(selection));
            var labels = new IdxArray([selection.Length], full.LabelsOf(selection));
            if (write)
            {
                WriteIdx(Path.Combine(EmbeddedDirectory(), FashionMnist.FileName(split, images: true)), images);
                WriteIdx(Path.Combine(EmbeddedDirectory(), FashionMnist.FileName(split, images: false)), labels);
                continue;
            }

            var assembly = typeof(FashionMnist).Assembly;
            Assert.Equal(Decompress(images), DecompressResource(assembly, FashionMnist.EmbeddedResourceName(split, images: true)));
            Assert.Equal(Decompress(labels), DecompressResource(assembly, FashionMnist.EmbeddedResourceName(split, images: false)));
        }
    }

    private static void WriteIdx(string path, IdxArray array)
    {
        using var file = File.Create(path);
        IdxFile.WriteGzip(file, array);
    }

    private static byte[] Decompress(IdxArray array)
    {
        using var compressed = new MemoryStream();
        IdxFile.WriteGzip(compressed, array);
        compressed.Position = 0;
        return Decompress(compressed);
    }

    private static byte[] DecompressResource(System.Reflection.Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)!;
        return Decompress(stream);
    }

    private static byte[] Decompress(Stream compressed)
    {
        using var gzip = new GZipStream(compressed, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        gzip.CopyTo(raw);
        return raw.ToArray();
    }

    private static string EmbeddedDirectory([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "..", "src", "CeDsl.Training", "Data", "Embedded"));
}
