using System.Globalization;
using System.Text;
using CeDsl.IO;

namespace CeDsl.Training;

/// <summary>
/// Per-epoch metrics as CSV (invariant culture, one header line). Each append rewrites the file
/// atomically, and drops rows of the same or later epochs first, so a resumed run that repeats
/// epochs after its checkpoint leaves exactly one row per epoch.
/// </summary>
public static class MetricsCsv
{
    /// <summary>The header line.</summary>
    public const string Header = "epoch,step,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,images_per_second,seconds";

    /// <summary>Appends <paramref name="metrics"/> to <paramref name="path"/>, creating it with the header.</summary>
    /// <exception cref="InvalidDataException">The existing file has another header.</exception>
    public static void Append(string path, EpochMetrics metrics)
    {
        var rows = File.Exists(path) ? Read(path).Where(m => m.Epoch < metrics.Epoch).ToList() : [];
        rows.Add(metrics);
        var text = new StringBuilder(Header).Append('\n');
        foreach (var row in rows)
            text.Append(Format(row)).Append('\n');
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>Reads every row of a metrics file.</summary>
    /// <exception cref="InvalidDataException">The file has another header or a malformed row.</exception>
    public static IReadOnlyList<EpochMetrics> Read(string path)
    {
        string[] lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0] != Header)
            throw new InvalidDataException($"Metrics file '{path}' does not start with the header '{Header}'.");
        return [.. lines.Skip(1).Where(l => l.Length > 0).Select((line, i) => Parse(path, i + 2, line))];
    }

    private static string Format(EpochMetrics m) => string.Join(',',
        m.Epoch.ToString(CultureInfo.InvariantCulture), m.GlobalStep.ToString(CultureInfo.InvariantCulture),
        Number(m.LearningRate), Number(m.TrainLoss), Number(m.TrainAccuracy), Number(m.TestLoss), Number(m.TestAccuracy),
        m.ImagesPerSecond.ToString("F1", CultureInfo.InvariantCulture), m.Seconds.ToString("F3", CultureInfo.InvariantCulture));

    private static string Number(double? value) => value?.ToString("G9", CultureInfo.InvariantCulture) ?? "";

    private static EpochMetrics Parse(string path, int lineNumber, string line)
    {
        string[] fields = line.Split(',');
        try
        {
            if (fields.Length != 9)
                throw new FormatException($"{fields.Length} fields, expected 9");
            return new EpochMetrics(int.Parse(fields[0], CultureInfo.InvariantCulture), long.Parse(fields[1], CultureInfo.InvariantCulture),
                Double(fields[2]), Double(fields[3]), Double(fields[4]),
                fields[5].Length == 0 ? null : Double(fields[5]), fields[6].Length == 0 ? null : Double(fields[6]),
                Double(fields[7]), Double(fields[8]));
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"Metrics file '{path}', line {lineNumber}: {e.Message}: '{line}'.", e);
        }

        static double Double(string field) => double.Parse(field, NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
