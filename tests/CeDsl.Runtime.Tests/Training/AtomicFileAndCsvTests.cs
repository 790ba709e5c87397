using CeDsl.Training;

namespace CeDsl.Runtime.Tests.Training;

public sealed class AtomicFileAndCsvTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cedsl-atomic-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_write_that_fails_half_way_leaves_the_existing_file_byte_identical_and_no_temporary_file()
    {
        string path = Path.Combine(_directory, "model.ckpt");
        byte[] original = [.. Enumerable.Range(0, 5000).Select(i => (byte)(i * 31))];
        File.WriteAllBytes(path, original);

        var error = Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[100_000]);
            throw new IOException("disk full (simulated)");
        }));

        Assert.Equal("disk full (simulated)", error.Message);
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_directory));
    }

    [Fact]
    public void A_successful_write_replaces_the_file()
    {
        string path = Path.Combine(_directory, "a.bin");
        File.WriteAllBytes(path, [1, 2, 3]);

        AtomicFile.Write(path, stream => stream.Write([9, 8]));

        Assert.Equal(new byte[] { 9, 8 }, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(_directory));
    }

    [Fact]
    public void Writing_into_a_missing_directory_is_a_clear_error()
    {
        string path = Path.Combine(_directory, "missing", "a.bin");
        var error = Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.Write(path, _ => { }));
        Assert.Contains(Path.Combine(_directory, "missing"), error.Message);
    }

    [Fact]
    public void Metrics_csv_has_one_header_invariant_numbers_and_one_row_per_epoch_after_a_repeat()
    {
        string path = Path.Combine(_directory, "metrics.csv");
        EpochMetrics Row(int epoch, double? test) => new(epoch, epoch * 10L, 0.05, 1.25 / epoch, 0.5, test, test is null ? null : 0.75, 1234.56, 2.5);

        MetricsCsv.Append(path, Row(1, 0.5));
        MetricsCsv.Append(path, Row(2, null));
        MetricsCsv.Append(path, Row(3, 0.25));
        // A run resumed from the epoch-1 checkpoint repeats epoch 2.
        MetricsCsv.Append(path, Row(2, 0.125));

        string[] lines = File.ReadAllLines(path);
        Assert.Equal(
        [
            MetricsCsv.Header,
            "1,10,0.05,1.25,0.5,0.5,0.75,1234.6,2.500",
            "2,20,0.05,0.625,0.5,0.125,0.75,1234.6,2.500",
        ], lines);
        Assert.Equal([1, 2], MetricsCsv.Read(path).Select(m => m.Epoch));
        Assert.Equal(0.625, MetricsCsv.Read(path)[1].TrainLoss);
    }

    [Fact]
    public void Metrics_csv_with_another_header_is_a_clear_error_and_is_left_alone()
    {
        string path = Path.Combine(_directory, "other.csv");
        File.WriteAllText(path, "a,b\n1,2\n");

        var error = Assert.Throws<InvalidDataException>(() => MetricsCsv.Append(path, new EpochMetrics(1, 1, 0.1, 1, 0, null, null, 1, 1)));

        Assert.Contains(path, error.Message);
        Assert.Equal("a,b\n1,2\n", File.ReadAllText(path));
    }
}
