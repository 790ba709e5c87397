namespace CeDsl.Onnx;

/// <summary>
/// A network that cannot be exported to ONNX: an operation without an ONNX form, state that does not
/// fit the architecture, or state the evaluation output cannot be computed from. Nothing was written.
/// </summary>
public sealed class OnnxExportException : Exception
{
    /// <summary>A refusal naming the architecture node and the module (state-dict prefix) it concerns.</summary>
    public OnnxExportException(string message, string? node = null, string? module = null, Exception? inner = null) : base(message, inner)
    {
        Node = node;
        Module = module;
    }

    /// <summary>The name of the architecture node that cannot be exported, when one is to blame.</summary>
    public string? Node { get; }

    /// <summary>The module path of that node (the prefix of its state-dict keys); null for dataflow operations.</summary>
    public string? Module { get; }
}
