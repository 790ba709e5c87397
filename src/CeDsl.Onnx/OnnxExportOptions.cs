using System.Globalization;
using CeDsl.Data;

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
    /// Key-value pairs added to the model's metadata (ONNX <c>metadata_props</c>), next to the ones the exporter
    /// writes: <c>cedsl.network</c> (the architecture's name) and <c>cedsl.version</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>The metadata key of the per-channel means of <see cref="Normalization"/>, comma-separated.</summary>
    public const string InputMeanKey = "cedsl.input.mean";

    /// <summary>The metadata key of the per-channel standard deviations of <see cref="Normalization"/>, comma-separated.</summary>
    public const string InputStdKey = "cedsl.input.std";

    /// <summary>The metadata key of the size images are zero-padded to (centred, before normalization).</summary>
    public const string InputPadToKey = "cedsl.input.pad_to";

    /// <summary>The metadata key of the class names, comma-separated, in label order.</summary>
    public const string ClassesKey = "cedsl.classes";

    /// <summary>
    /// These options with the preprocessing a consumer needs in the metadata: pixels p in [0, 255], zero-padded (centred) to
    /// <paramref name="padTo"/> when given, become (p / 255 - mean) / std per channel (<see cref="InputMeanKey"/>,
    /// <see cref="InputStdKey"/>, <see cref="InputPadToKey"/>); and the class names (<see cref="ClassesKey"/>).
    /// </summary>
    public OnnxExportOptions WithPreprocessing(Normalization normalization, int? padTo = null, IEnumerable<string>? classes = null)
    {
        ArgumentNullException.ThrowIfNull(normalization);
        var metadata = new Dictionary<string, string>(Metadata, StringComparer.Ordinal)
        {
            [InputMeanKey] = string.Join(",", normalization.Mean.Select(m => m.ToString("R", CultureInfo.InvariantCulture))),
            [InputStdKey] = string.Join(",", normalization.Std.Select(s => s.ToString("R", CultureInfo.InvariantCulture))),
        };
        if (padTo is { } size)
            metadata[InputPadToKey] = size.ToString(CultureInfo.InvariantCulture);
        if (classes is not null)
            metadata[ClassesKey] = string.Join(",", classes);
        return this with { Metadata = metadata };
    }
}
