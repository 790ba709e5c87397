using System.Globalization;

namespace CeDsl.Onnx;

/// <summary>How <see cref="OnnxExport"/> names and labels the model it writes.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The name of the model's input, float32 (batch, C, H, W) with a symbolic batch size.</summary>
    public string InputName { get; init; } = "input";

    /// <summary>The name of the model's output, float32 (batch, ...); by default <c>logits</c> for flat features, <c>output</c> for a feature map.</summary>
    public string? OutputName { get; init; }

    /// <summary>The name of the symbolic batch dimension of the input and output.</summary>
    public string BatchDimension { get; init; } = "batch";

    /// <summary>
    /// Writes CE, BD, AII and SE in the form exports had before their blocked-layout form: CE's map as the (N, G, d, d)
    /// matrices of every sample multiplied by MatMul, the instance variance by ReduceMean and ReduceSumSquare, the
    /// per-channel factors broadcast from (N, C, 1, 1). The same numbers, slower in ONNX Runtime; kept so that the ONNX
    /// benchmark measures both forms in one run.
    /// </summary>
    internal bool PerSampleMatrices { get; init; }

    /// <summary>
    /// Key-value pairs added to the model's metadata (ONNX <c>metadata_props</c>), next to the ones the exporter
    /// writes: <c>cedsl.network</c> (the architecture's name) and <c>cedsl.version</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>The metadata key of the per-channel means the input is normalized with, comma-separated.</summary>
    public const string InputMeanKey = "cedsl.input.mean";

    /// <summary>The metadata key of the per-channel standard deviations the input is normalized with, comma-separated.</summary>
    public const string InputStdKey = "cedsl.input.std";

    /// <summary>The metadata key of the size images are zero-padded to (centred, before normalization).</summary>
    public const string InputPadToKey = "cedsl.input.pad_to";

    /// <summary>The metadata key of the class names, comma-separated, in label order.</summary>
    public const string ClassesKey = "cedsl.classes";

    /// <summary>
    /// These options with the preprocessing a consumer needs in the metadata: pixels p in [0, 255], zero-padded (centred) to
    /// <paramref name="padTo"/> when given, become (p / 255 - mean) / std per channel (<see cref="InputMeanKey"/>,
    /// <see cref="InputStdKey"/>, <see cref="InputPadToKey"/>); and the class names (<see cref="ClassesKey"/>).
    /// With CeDsl.Training's <c>Normalization</c>: <c>WithPreprocessing(normalization.Mean, normalization.Std)</c>.
    /// </summary>
    /// <param name="mean">The mean of each channel, in [0, 1] units.</param>
    /// <param name="std">The standard deviation of each channel, in [0, 1] units; positive.</param>
    /// <param name="padTo">The size images are zero-padded to, centred, before normalization.</param>
    /// <param name="classes">The class names in label order.</param>
    /// <exception cref="ArgumentException">No channel, means and deviations of different counts, or a deviation that is not positive.</exception>
    public OnnxExportOptions WithPreprocessing(IReadOnlyList<double> mean, IReadOnlyList<double> std, int? padTo = null, IEnumerable<string>? classes = null)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count == 0 || mean.Count != std.Count)
            throw new ArgumentException($"The preprocessing needs one mean and one standard deviation per channel, got {mean.Count} means and {std.Count} standard deviations.", nameof(std));
        if (std.Any(s => !(s > 0)))
            throw new ArgumentException($"The standard deviations must be positive, got [{string.Join(", ", std.Select(s => s.ToString(CultureInfo.InvariantCulture)))}].", nameof(std));
        var metadata = new Dictionary<string, string>(Metadata, StringComparer.Ordinal)
        {
            [InputMeanKey] = string.Join(",", mean.Select(m => m.ToString("R", CultureInfo.InvariantCulture))),
            [InputStdKey] = string.Join(",", std.Select(s => s.ToString("R", CultureInfo.InvariantCulture))),
        };
        if (padTo is { } size)
            metadata[InputPadToKey] = size.ToString(CultureInfo.InvariantCulture);
        if (classes is not null)
            metadata[ClassesKey] = string.Join(",", classes);
        return this with { Metadata = metadata };
    }
}
