using System.Globalization;
using System.Reflection;
using CeDsl.Architecture;
using CeDsl.IO;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Onnx;

/// <summary>
/// Writes a CeDsl network as a standard ONNX model (opset <see cref="Opset"/>, no custom operator) that ONNX
/// Runtime, or any ONNX runtime, evaluates without libtorch. The model is built from the network's
/// <see cref="ModuleArchitecture"/> (the description every generated network carries) and its state dict,
/// never by inspecting modules: each node becomes the ONNX operators that compute its evaluation output.
/// The input is float32 (batch, C, H, W) with a symbolic batch size and the architecture's C, H, W; the
/// output float32 (batch, ...). A network that cannot be exported is refused with an
/// <see cref="OnnxExportException"/> naming the node and its module, and nothing is written.
/// </summary>
/// <example>
/// <code>
/// using var network = new CeResNet20(classes: 10, inChannels: 1);
/// // ... train ...
/// network.eval();
/// network.ExportOnnx("ce-resnet20.onnx");                 // the evaluation form
/// using var folded = network.Fold();
/// folded.ExportOnnx("ce-resnet20.folded.onnx");          // the folded form: fewer operators, the same logits
/// </code>
/// </example>
public static class OnnxExport
{
    /// <summary>The ONNX operator set the models use (LayerNormalization needs 17).</summary>
    public const int Opset = 17;

    /// <summary>The ONNX IR version of the models (the one that goes with opset 17).</summary>
    public const long IrVersion = 8;

    /// <summary>The metadata key of the architecture's name (<c>CeResNet20.Folded</c>).</summary>
    public const string NetworkKey = "cedsl.network";

    /// <summary>The metadata key of the CeDsl version that wrote the model.</summary>
    public const string VersionKey = "cedsl.version";

    /// <summary>
    /// Writes <paramref name="network"/> (a generated network or its <c>Folded</c> form, in evaluation mode) to
    /// <paramref name="path"/> as ONNX, for the input size it was declared with (or the one given).
    /// The architecture is the network type's <c>DescribeArchitecture</c> for the classes and input channels
    /// its state dict holds; the file is written atomically (a temporary file renamed over the destination).
    /// </summary>
    /// <exception cref="InvalidOperationException">The network is in training mode.</exception>
    /// <exception cref="OnnxExportException">The network cannot be exported; the message names the node.</exception>
    /// <exception cref="IOException">The file cannot be written (the destination is left unchanged).</exception>
    public static void ExportOnnx(this nn.Module<Tensor, Tensor> network, string path, OnnxExportOptions? options = null, long? inputHeight = null, long? inputWidth = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        network.ExportOnnx(ArchitectureOf(network, inputHeight, inputWidth), path, options);
    }

    /// <summary>
    /// Writes <paramref name="network"/> (in evaluation mode) to <paramref name="path"/> as the ONNX model of
    /// <paramref name="architecture"/>, the description of the network as built (e.g.
    /// <c>CeResNet20.DescribeArchitecture(classes: 10, inChannels: 1, inputHeight: 32, inputWidth: 32)</c>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The network is in training mode.</exception>
    /// <exception cref="OnnxExportException">The network's state dict does not fit the architecture, or the network cannot be exported.</exception>
    /// <exception cref="IOException">The file cannot be written (the destination is left unchanged).</exception>
    public static void ExportOnnx(this nn.Module<Tensor, Tensor> network, ModuleArchitecture architecture, string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (network.training)
            throw new InvalidOperationException(
                $"{architecture.Name} is in training mode; an ONNX model computes the evaluation output (running statistics, no dropout). Call eval() before exporting.");
        var model = ToModel(architecture, network.state_dict(), options);
        Write(model, path);
    }

    /// <summary>
    /// The ONNX model of <paramref name="architecture"/> with the parameters and buffers of <paramref name="state"/>
    /// (keys as the architecture's <see cref="ModuleArchitecture.State"/>), computing the evaluation output.
    /// </summary>
    /// <exception cref="OnnxExportException">The state dict does not fit the architecture, or a node cannot be exported.</exception>
    public static ModelProto ToModel(ModuleArchitecture architecture, IReadOnlyDictionary<string, Tensor> state, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(state);
        options ??= new OnnxExportOptions();
        if (Mismatch(architecture, state) is { } mismatch)
            throw new OnnxExportException($"{architecture.Name}: the state dict does not fit the architecture: {mismatch}; nothing was written.");

        string outputName = options.OutputName ?? (architecture.Output.IsMap ? "output" : "logits");
        if (outputName == options.InputName)
            throw new ArgumentException($"The model's input and output cannot both be called '{outputName}'.", nameof(options));
        var graph = new OnnxGraph(options.BatchDimension);
        var writer = new OperationWriter(graph, architecture, state, options.PerSampleMatrices);
        var values = new Dictionary<string, string>(StringComparer.Ordinal) { [ModuleArchitecture.InputName] = options.InputName };
        foreach (var node in architecture.Nodes)
            values[node.Name] = writer.Write(node, node.Inputs.Select(input => values[input]).ToList());
        graph.Node("Identity", outputName, [values[architecture.OutputName]]);

        graph.Graph.Name = architecture.Name;
        graph.Graph.Input.Add(OnnxGraph.Value(options.InputName, options.BatchDimension, architecture.Input.Dimensions));
        graph.Graph.Output.Add(OnnxGraph.Value(outputName, options.BatchDimension, architecture.Output.Dimensions));
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "CeDsl",
            ProducerVersion = CeDslVersion,
            Graph = graph.Graph,
            DocString = $"{architecture.Name} (evaluation output), exported by CeDsl {CeDslVersion} from its architecture description and state dict.",
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { [NetworkKey] = architecture.Name, [VersionKey] = CeDslVersion };
        foreach (var (key, value) in options.Metadata)
            metadata[key] = value;
        foreach (var (key, value) in metadata)
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> atomically: a temporary file beside it, renamed over it.</summary>
    /// <exception cref="IOException">The file cannot be written (the destination is left unchanged).</exception>
    public static void Write(ModelProto model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(path, stream => model.WriteTo(stream));
    }

    /// <summary>The version of CeDsl (the runtime's informational version, without the commit).</summary>
    public static string CeDslVersion { get; } =
        (typeof(ModuleArchitecture).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0").Split('+')[0];

    /// <summary>
    /// The architecture of a generated network (or its <c>Folded</c> form) as built: its type's <c>DescribeArchitecture</c>
    /// with the classes and input channels its state dict holds (the first convolution's inputs, the final linear layer's
    /// outputs) and the declared input size, or <paramref name="inputHeight"/> x <paramref name="inputWidth"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The type has no such description (a block, a module written by hand), or its state dict fits none.</exception>
    public static ModuleArchitecture ArchitectureOf(nn.Module<Tensor, Tensor> network, long? inputHeight = null, long? inputWidth = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        var type = network.GetType();
        bool folded = !GeneratedNetwork.IsGeneratedNetwork(type);
        var generated = !folded ? GeneratedNetwork.Of(type)
            : type.DeclaringType is { } outer && GeneratedNetwork.IsGeneratedNetwork(outer) && GeneratedNetwork.Of(outer) is { } trained && trained.FoldedType == type ? trained
            : throw new ArgumentException(
                $"{type.Name} is not a generated network or its folded form (a block, a module written by hand); pass its architecture: network.ExportOnnx(architecture, path).",
                nameof(network));

        var state = network.state_dict();
        long? classes = null, inChannels = null;
        var architecture = Describe();
        if (Mismatch(architecture, state) is null)
            return architecture;

        // Built with other classes or input channels than the declared ones: read them from the state dict.
        var first = architecture.Nodes.FirstOrDefault(n => n.Inputs.Contains(ModuleArchitecture.InputName) && n.Operation is Conv2dOp);
        if (first?.Operation is Conv2dOp conv && state.TryGetValue(first.Module + ".weight", out var convWeight) && convWeight.dim() == 4)
            inChannels = convWeight.shape[1] * conv.Groups;
        if (architecture[architecture.OutputName].Operation is LinearOp && state.TryGetValue(architecture[architecture.OutputName].Module + ".weight", out var linearWeight) && linearWeight.dim() == 2)
            classes = linearWeight.shape[0];
        architecture = Describe();
        if (Mismatch(architecture, state) is { } mismatch)
            throw new ArgumentException(
                $"{type.Name}: the network's state dict fits none of its descriptions ({mismatch}); pass the architecture of the arguments it was built with: " +
                $"network.ExportOnnx({type.FullName?.Replace('+', '.')}.DescribeArchitecture(...), path).", nameof(network));
        return architecture;

        ModuleArchitecture Describe()
        {
            var declared = generated.Input;
            var input = TensorShape.Map(inChannels ?? declared.Channels, inputHeight ?? declared.Height, inputWidth ?? declared.Width);
            try
            {
                return generated.Describe(classes, input, folded);
            }
            catch (ArgumentException inner)
            {
                throw new ArgumentException($"{type.Name} cannot take that input: {inner.Message}", nameof(network), inner);
            }
        }
    }

    /// <summary>
    /// Why <paramref name="state"/> is not the state of <paramref name="architecture"/> (a missing, unexpected or misshapen key),
    /// or null when it is. A pruned selective layer's state is sized by its <c>kept</c> channels, not as described.
    /// </summary>
    private static string? Mismatch(ModuleArchitecture architecture, IReadOnlyDictionary<string, Tensor> state)
    {
        var described = architecture.State;
        var keys = described.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        if (state.Keys.FirstOrDefault(k => !keys.Contains(k)) is { } unexpected)
            return $"'{unexpected}' is not a parameter or buffer of any node";
        var pruned = architecture.Nodes.Where(n => n.Operation is PrunedSelectiveConv2dOp).Select(n => n.Module + ".").ToList();
        foreach (var (key, entry) in described)
        {
            if (!state.TryGetValue(key, out var tensor))
                return $"'{key}' is missing";
            if (pruned.Any(prefix => key.StartsWith(prefix, StringComparison.Ordinal)))
                continue;
            if (!tensor.shape.SequenceEqual(entry.Shape))
                return string.Create(CultureInfo.InvariantCulture, $"'{key}' is [{string.Join(", ", tensor.shape)}], described [{string.Join(", ", entry.Shape)}]");
        }
        return null;
    }
}
