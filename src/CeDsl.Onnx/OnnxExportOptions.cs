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
}
