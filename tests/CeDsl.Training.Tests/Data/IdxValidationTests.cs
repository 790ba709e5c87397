using System.Buffers.Binary;
using System.IO.Compression;
using CeDsl.Data;

namespace CeDsl.Training.Tests.Data;

/// <summary>Damaged or wrong Fashion-MNIST files, written to a temporary directory.</summary>
public sealed class IdxValidationTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cedsl-idx-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Valid_files_round_trip()
    {
        WriteSplit(DatasetSplit.Train, count: 12);
        WriteSplit(DatasetSplit.Test, count: 7);

        using var data = FashionMnist.Load(_directory);

        Assert.Equal(12, data.Train.Count);
        Assert.Equal(7, data.Test.Count);
        Assert.Equal(Pixels(12), data.Train.Images.bytes.ToArray());
        Assert.Equal(Labels(7), data.Test.Labels.data<long>().ToArray().Select(l => (byte)l).ToArray());
        Assert.Equal(Path.GetFullPath(_directory), data.Train.Source);
        Assert.False(data.Train.IsEmbeddedSubset);
    }

    [Fact]
    public void Truncated_image_data_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 5);
        WriteIdx(ImagesPath(DatasetSplit.Train), Header(IdxFile.ImagesMagicNumber, 5, 28, 28), Pixels(5)[..(4 * 784 + 100)]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(ImagesPath(DatasetSplit.Train), error.Message);
        Assert.Contains("truncated", error.Message);
        Assert.Contains($"promises {5 * 784} data bytes", error.Message);
        Assert.Contains($"the file has {4 * 784 + 100}", error.Message);
    }

    [Fact]
    public void Truncated_gzip_stream_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 50);
        string path = ImagesPath(DatasetSplit.Train);
        byte[] whole = File.ReadAllBytes(path);
        File.WriteAllBytes(path, whole[..(whole.Length * 2 / 3)]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(path, error.Message);
        Assert.Matches("truncated|not a valid gzip file", error.Message);
    }

    [Fact]
    public void Over_long_file_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 5);
        WriteIdx(LabelsPath(DatasetSplit.Train), Header(IdxFile.LabelsMagicNumber, 5), [.. Labels(5), 3]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(LabelsPath(DatasetSplit.Train), error.Message);
        Assert.Contains("over-long", error.Message);
    }

    [Fact]
    public void Wrong_magic_number_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Test, count: 5);
        // A labels file where the images file should be.
        WriteIdx(ImagesPath(DatasetSplit.Test), Header(IdxFile.LabelsMagicNumber, 5), Labels(5));

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Test));

        Assert.Contains(ImagesPath(DatasetSplit.Test), error.Message);
        Assert.Contains("wrong magic number 2049", error.Message);
        Assert.Contains("expected 2051", error.Message);
    }

    [Fact]
    public void Image_and_label_count_mismatch_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 5);
        WriteIdx(LabelsPath(DatasetSplit.Train), Header(IdxFile.LabelsMagicNumber, 4), Labels(4));

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(LabelsPath(DatasetSplit.Train), error.Message);
        Assert.Contains("4 labels", error.Message);
        Assert.Contains("5 images", error.Message);
    }

    [Fact]
    public void Images_that_are_not_28x28_are_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 2);
        WriteIdx(ImagesPath(DatasetSplit.Train), Header(IdxFile.ImagesMagicNumber, 2, 32, 32), new byte[2 * 32 * 32]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(ImagesPath(DatasetSplit.Train), error.Message);
        Assert.Contains("32x32", error.Message);
    }

    [Fact]
    public void Label_outside_0_to_9_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 3);
        WriteIdx(LabelsPath(DatasetSplit.Train), Header(IdxFile.LabelsMagicNumber, 3), [1, 10, 2]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(LabelsPath(DatasetSplit.Train), error.Message);
        Assert.Contains("label 10 at index 1", error.Message);
    }

    [Fact]
    public void Zero_dimension_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 3);
        WriteIdx(ImagesPath(DatasetSplit.Train), Header(IdxFile.ImagesMagicNumber, 0, 28, 28), []);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains("dimension 0 has size 0", error.Message);
    }

    [Fact]
    public void Corrupted_gzip_data_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 50);
        string path = ImagesPath(DatasetSplit.Train);
        byte[] bytes = File.ReadAllBytes(path);
        for (int i = bytes.Length / 2; i < bytes.Length / 2 + 16; i++)
            bytes[i] ^= 0x5A;
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Uncompressed_file_is_a_clear_error()
    {
        WriteSplit(DatasetSplit.Train, count: 2);
        File.WriteAllBytes(LabelsPath(DatasetSplit.Train), [.. Header(IdxFile.LabelsMagicNumber, 2), .. Labels(2)]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Contains(LabelsPath(DatasetSplit.Train), error.Message);
        Assert.Contains("not a gzip file (it does not start with the gzip signature 1f 8b)", error.Message);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(4)]
    [InlineData(1)]
    public void A_gzip_file_without_its_trailer_is_truncated(int cut)
    {
        WriteSplit(DatasetSplit.Train, count: 50);
        string path = ImagesPath(DatasetSplit.Train);
        byte[] whole = File.ReadAllBytes(path);
        File.WriteAllBytes(path, whole[..^cut]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Equal($"IDX file '{path}': truncated: the gzip trailer (CRC-32 and size) is missing or does not end the file", error.Message);
    }

    [Fact]
    public void A_damaged_crc_is_named_as_damage_not_as_a_compression_method()
    {
        WriteSplit(DatasetSplit.Train, count: 50);
        string path = ImagesPath(DatasetSplit.Train);
        byte[] bytes = File.ReadAllBytes(path);
        bytes[^6] ^= 0x01;
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Train));

        Assert.Equal($"IDX file '{path}': not a valid gzip file: its compressed data, CRC-32 or size is damaged", error.Message);
    }

    [Fact]
    public void A_directory_in_place_of_a_file_is_named_as_a_directory()
    {
        WriteSplit(DatasetSplit.Test, count: 2);
        File.Delete(LabelsPath(DatasetSplit.Test));
        Directory.CreateDirectory(LabelsPath(DatasetSplit.Test));

        var error = Assert.Throws<FileNotFoundException>(() => FashionMnist.LoadSplit(_directory, DatasetSplit.Test));

        Assert.Equal($"IDX file '{LabelsPath(DatasetSplit.Test)}' is a directory, not a file.", error.Message);
    }

    [Fact]
    public void Missing_directory_and_missing_file_name_what_is_missing()
    {
        string missing = Path.Combine(_directory, "nowhere");
        var noDirectory = Assert.Throws<DirectoryNotFoundException>(() => FashionMnist.Load(missing));
        Assert.Contains(missing, noDirectory.Message);

        WriteSplit(DatasetSplit.Train, count: 2);
        var noFile = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(_directory));
        Assert.Contains(ImagesPath(DatasetSplit.Test), noFile.Message);
    }

    private string ImagesPath(DatasetSplit split) => Path.Combine(_directory, FashionMnist.FileName(split, images: true));

    private string LabelsPath(DatasetSplit split) => Path.Combine(_directory, FashionMnist.FileName(split, images: false));

    private void WriteSplit(DatasetSplit split, int count)
    {
        WriteIdx(ImagesPath(split), Header(IdxFile.ImagesMagicNumber, count, 28, 28), Pixels(count));
        WriteIdx(LabelsPath(split), Header(IdxFile.LabelsMagicNumber, count), Labels(count));
    }

    private static byte[] Pixels(int count)
    {
        var pixels = new byte[count * 784];
        new Random(count).NextBytes(pixels);
        return pixels;
    }

    private static byte[] Labels(int count) => [.. Enumerable.Range(0, count).Select(i => (byte)(i * 7 % 10))];

    private static byte[] Header(int magic, params int[] sizes)
    {
        var header = new byte[4 + 4 * sizes.Length];
        BinaryPrimitives.WriteInt32BigEndian(header, magic);
        for (int i = 0; i < sizes.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), sizes[i]);
        return header;
    }

    /// <summary>Writes any bytes gzip-compressed, bypassing the writer's own checks.</summary>
    private static void WriteIdx(string path, byte[] header, byte[] data)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(header);
        gzip.Write(data);
    }
}
