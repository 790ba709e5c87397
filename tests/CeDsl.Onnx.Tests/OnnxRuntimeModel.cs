using CeDsl.Onnx;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace CeDsl.Onnx.Tests;

/// <summary>An exported model loaded in ONNX Runtime (graph optimizations all on, or all off), run on float32 batches.</summary>
internal sealed class OnnxRuntimeModel : IDisposable
{
    private readonly InferenceSession session;

    public OnnxRuntimeModel(byte[] model, bool optimize)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL,
            IntraOpNumThreads = 2,
            InterOpNumThreads = 1,
        };
        session = new InferenceSession(model, options);
    }

    public OnnxRuntimeModel(ModelProto model, bool optimize) : this(model.ToByteArray(), optimize)
    {
    }

    public IReadOnlyList<string> InputNames => session.InputNames;

    public IReadOnlyList<string> OutputNames => session.OutputNames;

    public IReadOnlyDictionary<string, string> Metadata => session.ModelMetadata.CustomMetadataMap;

    public IReadOnlyDictionary<string, NodeMetadata> InputMetadata => session.InputMetadata;

    public IReadOnlyDictionary<string, NodeMetadata> OutputMetadata => session.OutputMetadata;

    /// <summary>The output for <paramref name="input"/> of <paramref name="shape"/>, and the output's shape.</summary>
    public (float[] Values, long[] Shape) Run(float[] input, long[] shape)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(input, shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [session.InputNames[0]], [value], [session.OutputNames[0]]);
        var output = outputs[0];
        return (output.GetTensorDataAsSpan<float>().ToArray(), output.GetTensorTypeAndShape().Shape);
    }

    public void Dispose() => session.Dispose();
}
