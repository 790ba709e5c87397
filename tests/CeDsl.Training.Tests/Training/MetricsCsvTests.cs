using CeDsl.Training;

namespace CeDsl.Training.Tests.Training;

/// <summary>Per-epoch metrics CSV (written with the project's atomic writer, tested in IO/AtomicSaveTests).</summary>
public sealed class MetricsCsvTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cedsl-csv-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

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
