using System.Buffers.Binary;
using System.Text;
using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.IO;

public sealed class SafeTensorsFormatTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void A_2x2_F32_tensor_is_written_byte_for_byte_as_the_format_specifies()
    {
        string path = _directory.File("w.safetensors");
        using var w = tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);

        SafeTensors.Save(new Dictionary<string, Tensor> { ["w"] = w }, path);

        // {"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}} is 57 bytes; padded with 7 spaces to 64.
        var expected = new List<byte> { 64, 0, 0, 0, 0, 0, 0, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}       "));
        expected.AddRange(new byte[] { 0x00, 0x00, 0x80, 0x3F }); // 1.0f
        expected.AddRange(new byte[] { 0x00, 0x00, 0x00, 0x40 }); // 2.0f
        expected.AddRange(new byte[] { 0x00, 0x00, 0x40, 0x40 }); // 3.0f
        expected.AddRange(new byte[] { 0x00, 0x00, 0x80, 0x40 }); // 4.0f
        Assert.Equal(expected.ToArray(), File.ReadAllBytes(path));
    }

    [Fact]
    public void A_hand_built_2x2_F32_file_is_read_back()
    {
        string path = _directory.File("hand.safetensors");
        var bytes = new List<byte> { 64, 0, 0, 0, 0, 0, 0, 0 };
        bytes.AddRange(Encoding.ASCII.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}       "));
        bytes.AddRange(new byte[] { 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x40 });
        File.WriteAllBytes(path, bytes.ToArray());

        var tensors = SafeTensors.Load(path);

        Tensor w = Assert.Single(tensors).Value;
        Assert.Equal("w", tensors.Keys.Single());
        Assert.Equal(ScalarType.Float32, w.dtype);
        Assert.Equal(new long[] { 2, 2 }, w.shape);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, w.data<float>().ToArray());
        Assert.Empty(SafeTensors.LoadMetadata(path));
        w.Dispose();
    }

    [Fact]
    public void Header_puts_metadata_first_and_sorts_tensors_by_descending_alignment_then_name()
    {
        string path = _directory.File("order.safetensors");
        using var b = tensor(new sbyte[] { -5 });
        using var a = tensor(new float[] { 1 });
        using var z = tensor(new double[] { 2 });
        using var c = tensor(new long[] { 3 });
        using var ab = tensor(new float[] { 4 });

        SafeTensors.Save(new Dictionary<string, Tensor> { ["b"] = b, ["a"] = a, ["z"] = z, ["c"] = c, ["ab"] = ab }, path,
            new Dictionary<string, string> { ["zeta"] = "last", ["format"] = "pt" });

        string json = "{\"__metadata__\":{\"format\":\"pt\",\"zeta\":\"last\"}," +
                      "\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}," +
                      "\"z\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}," +
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}," +
                      "\"ab\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}," +
                      "\"b\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[24,25]}}";
        int padded = (json.Length + 7) / 8 * 8;
        byte[] file = File.ReadAllBytes(path);
        Assert.Equal((ulong)padded, BinaryPrimitives.ReadUInt64LittleEndian(file));
        Assert.Equal(json.PadRight(padded, ' '), Encoding.UTF8.GetString(file, 8, padded));
        byte[] data = file[(8 + padded)..];
        Assert.Equal(25, data.Length);
        Assert.Equal(3L, BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(0)));
        Assert.Equal(2.0, BinaryPrimitives.ReadDoubleLittleEndian(data.AsSpan(8)));
        Assert.Equal(1.0f, BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(16)));
        Assert.Equal(4.0f, BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(20)));
        Assert.Equal(unchecked((byte)-5), data[24]);

        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["zeta"] = "last" }, SafeTensors.LoadMetadata(path));
    }

    [Fact]
    public void No_tensors_gives_the_padded_empty_object()
    {
        string path = _directory.File("empty.safetensors");
        SafeTensors.Save(new Dictionary<string, Tensor>(), path);

        Assert.Equal(new byte[] { 8, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}', 32, 32, 32, 32, 32, 32 }, File.ReadAllBytes(path));
        Assert.Empty(SafeTensors.Load(path));
    }

    public static TheoryData<ScalarType> AllTypes() => new()
    {
        ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.ComplexFloat32,
        ScalarType.Int64, ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    };

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void Every_supported_dtype_round_trips_bit_exactly(ScalarType type)
    {
        string path = _directory.File($"{type}.safetensors");
        using var scope = NewDisposeScope();
        // Values spanning the type's range, incl. negative zero, extremes and (for floats) non-finite values.
        var source = type switch
        {
            ScalarType.Bool => tensor(new[] { true, false, true, true, false, false }),
            ScalarType.Byte => tensor(new byte[] { 0, 1, 127, 128, 254, 255 }),
            ScalarType.Int8 => tensor(new sbyte[] { sbyte.MinValue, -1, 0, 1, 100, sbyte.MaxValue }),
            ScalarType.Int16 => tensor(new short[] { short.MinValue, -1, 0, 1, 1000, short.MaxValue }),
            ScalarType.Int32 => tensor(new[] { int.MinValue, -1, 0, 1, 100000, int.MaxValue }),
            ScalarType.Int64 => tensor(new[] { long.MinValue, -1, 0, 1, 1L << 40, long.MaxValue }),
            ScalarType.ComplexFloat32 => complex(tensor(new float[] { 1, -0.0f, float.MaxValue, 3, float.NaN, 6 }),
                                                 tensor(new float[] { 0.5f, 2, -1, float.NegativeInfinity, 0, float.Epsilon })),
            _ => tensor(new[] { -0.0, 0.1, -2.5, double.PositiveInfinity, double.NaN, 1e-3 }).to(type),
        };
        var shaped = source.reshape(2, 3);
        var scalar = tensor(7).to(type);
        var emptyTensor = zeros(new long[] { 0, 4 }, type);

        SafeTensors.Save(new Dictionary<string, Tensor> { ["values"] = shaped, ["scalar"] = scalar, ["empty"] = emptyTensor }, path);
        var loaded = SafeTensors.Load(path);

        Assert.Equal(new[] { "empty", "scalar", "values" }, loaded.Keys.Order());
        foreach (var (name, original) in new[] { ("values", shaped), ("scalar", scalar), ("empty", emptyTensor) })
        {
            Tensor back = loaded[name];
            Assert.Equal(type, back.dtype);
            Assert.Equal(original.shape, back.shape);
            Assert.Equal(original.bytes.ToArray(), back.bytes.ToArray());
        }
    }

    [Fact]
    public void Non_contiguous_and_gradient_tracking_tensors_are_written_in_logical_row_major_order()
    {
        string path = _directory.File("view.safetensors");
        using var scope = NewDisposeScope();
        var matrix = tensor(new float[] { 1, 2, 3, 4, 5, 6 }).reshape(2, 3);
        var transposed = matrix.t(); // [[1,4],[2,5],[3,6]], not contiguous
        var parameter = new TorchSharp.Modules.Parameter(tensor(new double[] { 0.25, -8 }), requires_grad: true);
        Assert.False(transposed.is_contiguous());

        SafeTensors.Save(new Dictionary<string, Tensor> { ["t"] = transposed, ["p"] = parameter }, path);
        var loaded = SafeTensors.Load(path);

        Assert.Equal(new long[] { 3, 2 }, loaded["t"].shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, loaded["t"].data<float>().ToArray());
        Assert.Equal(new[] { 0.25, -8 }, loaded["p"].data<double>().ToArray());
        Assert.False(loaded["p"].requires_grad);
    }

    [Fact]
    public void Unicode_and_escaped_names_round_trip()
    {
        string path = _directory.File("names.safetensors");
        using var scope = NewDisposeScope();
        string[] names = { "layer.0.weight", "größe", "quote\"back\\slash", "tab\there", "" };
        var tensors = names.Select((name, i) => (name, tensor: tensor(new float[] { i }))).ToDictionary(p => p.name, p => p.tensor);

        SafeTensors.Save(tensors, path);
        var loaded = SafeTensors.Load(path);

        Assert.Equal(names.Order(StringComparer.Ordinal), loaded.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, value) in tensors)
            Assert.Equal(value.data<float>().ToArray(), loaded[name].data<float>().ToArray());
    }

    [Fact]
    public void Unsupported_element_types_and_reserved_names_are_rejected_before_anything_is_written()
    {
        string path = _directory.File("bad.safetensors");
        using var scope = NewDisposeScope();

        var complex128 = complex(tensor(new double[] { 1 }), tensor(new double[] { 2 }));
        var typeError = Assert.Throws<ArgumentException>(() =>
            SafeTensors.Save(new Dictionary<string, Tensor> { ["z"] = complex128 }, path));
        Assert.Contains("'z'", typeError.Message);
        Assert.Contains("ComplexFloat64", typeError.Message);

        var nameError = Assert.Throws<ArgumentException>(() =>
            SafeTensors.Save(new Dictionary<string, Tensor> { ["__metadata__"] = ones(1) }, path));
        Assert.Contains("__metadata__", nameError.Message);

        Assert.Empty(_directory.Entries());
    }

    [Fact]
    public void Large_tensors_are_copied_in_chunks_at_the_right_offsets()
    {
        using var scope = NewDisposeScope();
        var source = arange(0, 1000, dtype: ScalarType.Int32);
        var received = new List<(long Offset, byte[] Bytes)>();

        TensorBytes.ForEachChunk(source, (chunk, offset) => received.Add((offset, chunk.ToArray())), maxChunkBytes: 64);

        Assert.Equal(63, received.Count); // 16 ints per chunk, 62 full chunks and one of 8
        Assert.Equal(Enumerable.Range(0, 63).Select(i => i * 64L), received.Select(r => r.Offset));
        byte[] all = received.SelectMany(r => r.Bytes).ToArray();
        Assert.Equal(source.bytes.ToArray(), all);

        var destination = zeros(1000, dtype: ScalarType.Int32);
        TensorBytes.ForEachChunk(destination, (chunk, offset) => all.AsSpan((int)offset, chunk.Length).CopyTo(chunk), maxChunkBytes: 64);
        Assert.True(destination.equal(source).all().item<bool>());
    }
}
