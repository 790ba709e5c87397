using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Onnx;

/// <summary>
/// An ONNX graph being written: nodes in order, initializers (the weights and the constants derived
/// from them), and the value names the nodes read and write. Every value a node writes gets a name
/// that says where it comes from: the architecture node's name, then a slash and the step
/// (<c>layer1.0.ce/variance</c>).
/// </summary>
internal sealed class OnnxGraph
{
    private readonly GraphProto graph = new();
    private readonly HashSet<string> names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> constants = new(StringComparer.Ordinal);

    public GraphProto Graph => graph;

    /// <summary>Adds node <paramref name="opType"/> reading <paramref name="inputs"/> ("" for an omitted optional input) and writing <paramref name="output"/>.</summary>
    public string Node(string opType, string output, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        Claim(output);
        var node = new NodeProto { OpType = opType, Name = output + "/" + opType };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        graph.Node.Add(node);
        return output;
    }

    /// <summary>Adds a float32 initializer named <paramref name="name"/> holding <paramref name="tensor"/> (converted to float32 on the CPU).</summary>
    public string Initializer(string name, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var values = tensor.detach().to(ScalarType.Float32).cpu().contiguous();
        return Add(name, values.shape, values.data<float>().ToArray());
    }

    /// <summary>Adds an int64 initializer named <paramref name="name"/>.</summary>
    public string Initializer(string name, long[] shape, long[] values)
    {
        Claim(name);
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        proto.Dims.AddRange(shape);
        proto.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        graph.Initializer.Add(proto);
        return name;
    }

    /// <summary>Adds a float32 initializer of <paramref name="shape"/>.</summary>
    public string Add(string name, long[] shape, float[] values)
    {
        Claim(name);
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(shape);
        proto.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        graph.Initializer.Add(proto);
        return name;
    }

    /// <summary>A shared int64 constant (a shape, axes, indices), one initializer per distinct value.</summary>
    public string Int64s(params long[] values)
    {
        string key = "i64:" + string.Join(",", values);
        if (!constants.TryGetValue(key, out var name))
            constants[key] = name = Initializer("const/int64/" + string.Join("_", values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))), [values.Length], values);
        return name;
    }

    /// <summary>A shared float32 scalar constant (shape []).</summary>
    public string Scalar(float value)
    {
        string key = "f32:" + BitConverter.SingleToInt32Bits(value).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!constants.TryGetValue(key, out var name))
            constants[key] = name = Add("const/float/" + value.ToString("R", System.Globalization.CultureInfo.InvariantCulture), [], [value]);
        return name;
    }

    /// <summary>A value name nobody has used: <paramref name="name"/>, or it with a number when taken.</summary>
    public string Fresh(string name)
    {
        var unique = name;
        for (int i = 2; names.Contains(unique); i++)
            unique = name + "_" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return unique;
    }

    private void Claim(string name)
    {
        if (!names.Add(name))
            throw new InvalidOperationException($"The ONNX value '{name}' is written twice.");
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, double value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };

    public static AttributeProto Text(string name, string value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A float32 tensor value of <paramref name="dimensions"/>, the first one the symbolic batch size.</summary>
    public static ValueInfoProto Value(string name, string batch, IEnumerable<long> dimensions)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batch });
        foreach (var dimension in dimensions)
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dimension });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
