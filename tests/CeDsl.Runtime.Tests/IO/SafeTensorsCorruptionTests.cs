using System.Buffers.Binary;
using System.Text;
using CeDsl.IO;

namespace CeDsl.Runtime.Tests.IO;

public sealed class SafeTensorsCorruptionTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>A file with the given header text (padded to 8 bytes as writers do) and data section.</summary>
    private static byte[] File(string header, int dataBytes, ulong? declaredHeaderLength = null)
    {
        byte[] text = Encoding.UTF8.GetBytes(header.PadRight((header.Length + 7) / 8 * 8));
        return File(text, dataBytes, declaredHeaderLength);
    }

    private static byte[] File(byte[] header, int dataBytes, ulong? declaredHeaderLength = null)
    {
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int i = 8 + header.Length; i < bytes.Length; i++)
            bytes[i] = (byte)i;
        return bytes;
    }

    private const string Valid = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"I16\",\"shape\":[2,1],\"data_offsets\":[8,12]}}";

    public static TheoryData<string, byte[], string> CorruptFiles() => new()
    {
        { "empty file", Array.Empty<byte>(), "0 bytes long, too short for the 8-byte header length" },
        { "truncated length prefix", new byte[] { 16, 0, 0, 0, 0 }, "5 bytes long, too short for the 8-byte header length" },
        { "header length past end", File(Valid, 12, declaredHeaderLength: 4096), "header length 4096 runs past the end of the file" },
        { "huge header length", File(Valid, 12, declaredHeaderLength: ulong.MaxValue), $"header length {ulong.MaxValue} runs past the end of the file" },
        { "truncated data", File(Valid, 10), "tensor 'b' has data_offsets [8, 12) past the end of the 10-byte data section (truncated file?)" },
        { "truncated inside the header", File(Valid, 12)[..40], "runs past the end of the file" },
        { "malformed JSON", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],", 8), "the header is not valid JSON" },
        { "trailing comma", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8), "the header is not valid JSON" },
        { "header not an object", File("[1,2,3]", 0), "the header does not start with '{'" },
        { "invalid UTF-8", File(new byte[] { (byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}' }, 0), "the header is not valid UTF-8" },
        { "unknown dtype", File(Valid.Replace("\"I16\"", "\"Q7\""), 12), "tensor 'b' has unknown or unsupported dtype 'Q7'" },
        { "unsupported dtype", File(Valid.Replace("\"I16\"", "\"F8_E4M3\""), 12), "tensor 'b' has unknown or unsupported dtype 'F8_E4M3'" },
        { "missing dtype", File("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "tensor 'a' has no string 'dtype'" },
        { "missing shape", File("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "tensor 'a' has no 'shape' array" },
        { "negative dimension", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "tensor 'a' has 'shape' entry -2, not a non-negative integer" },
        { "fractional offset", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8), "tensor 'a' has 'data_offsets' entry 8.5, not a non-negative integer" },
        { "three offsets", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8), "tensor 'a' has 3 data_offsets; expected [begin, end]" },
        { "offsets reversed", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8), "tensor 'a' has data_offsets [8, 0) that end before they begin" },
        { "offsets not matching dtype and shape", File(Valid.Replace("\"shape\":[2,1]", "\"shape\":[3,1]"), 12), "tensor 'b' has data_offsets [8, 12) spanning 4 bytes, but dtype I16 with shape [3, 1] needs 6 bytes" },
        { "shape overflow", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8), "tensor 'a' has shape [4294967296, 4294967296], too large to address" },
        { "offsets out of range", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 8), "tensor 'a' has data_offsets [16, 24) past the end of the 8-byte data section" },
        { "overlapping tensors", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "tensors 'a' [0, 8) and 'b' [4, 12) overlap" },
        { "gap between tensors", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16), "bytes [8, 12) of the data section belong to no tensor" },
        { "data not starting at 0", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "bytes [0, 4) of the data section belong to no tensor" },
        { "trailing bytes", File(Valid, 20), "the data section is 20 bytes but the tensors cover only [0, 12) (trailing bytes)" },
        { "duplicate tensor", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "the header has the key 'a' twice" },
        { "tensor entry not an object", File("{\"a\":[0,4]}", 4), "tensor 'a' is described by a JSON Array, not an object" },
        { "metadata not a map", File("{\"__metadata__\":[\"x\"]}", 0), "'__metadata__' is a JSON Array; it must map strings to strings" },
        { "metadata value not a string", File("{\"__metadata__\":{\"epoch\":3}}", 0), "'__metadata__' entry 'epoch' is a JSON Number; metadata values must be strings" },
    };

    [Theory]
    [MemberData(nameof(CorruptFiles))]
    public void Corrupt_files_throw_InvalidDataException_naming_the_file_and_the_problem(string name, byte[] content, string problem)
    {
        string path = _directory.File(name.Replace(' ', '_') + ".safetensors");
        System.IO.File.WriteAllBytes(path, content);

        var load = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        var metadata = Assert.Throws<InvalidDataException>(() => SafeTensors.LoadMetadata(path));

        Assert.StartsWith($"Invalid safetensors file '{path}': ", load.Message);
        Assert.Contains(problem, load.Message);
        Assert.Equal(load.Message, metadata.Message);
    }

    [Fact]
    public void The_valid_baseline_of_the_corrupt_files_loads()
    {
        string path = _directory.File("valid.safetensors");
        byte[] content = File(Valid, 12);
        System.IO.File.WriteAllBytes(path, content);

        var tensors = SafeTensors.Load(path);

        Assert.Equal(new[] { "a", "b" }, tensors.Keys);
        Assert.Equal(new long[] { 2, 1 }, tensors["b"].shape);
        // 'b' is the last 4 bytes of the file, filled with their file offsets (mod 256) by File().
        int b = content.Length - 4;
        short Int16At(int offset) => (short)((byte)offset | (byte)(offset + 1) << 8);
        Assert.Equal(new[] { Int16At(b), Int16At(b + 2) }, tensors["b"].data<short>().ToArray());
        foreach (var tensor in tensors.Values)
            tensor.Dispose();
    }

    [Fact]
    public void A_missing_file_is_reported_as_such()
    {
        Assert.Throws<FileNotFoundException>(() => SafeTensors.Load(_directory.File("absent.safetensors")));
    }
}
