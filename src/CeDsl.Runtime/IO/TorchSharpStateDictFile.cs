using System.Text;
using static TorchSharp.torch;

namespace CeDsl.IO;

/// <summary>
/// Reads the state-dict format written by TorchSharp's <c>Module.save</c> into new tensors, without
/// touching any module, so that a load can be checked completely before anything is copied
/// (<c>Module.load</c> copies entry by entry and stops at the first mismatch, leaving the module half-loaded).
/// </summary>
/// <remarks>
/// Layout: entry count (LEB128), then per entry the key (a .NET BinaryWriter string: 7-bit-encoded
/// length + UTF-8), the element type (LEB128 of TorchSharp's ScalarType), the rank (LEB128), each
/// dimension (LEB128) and the raw little-endian, row-major element bytes.
/// </remarks>
internal static class TorchSharpStateDictFile
{
    private const int MaxRank = 64;

    internal static Dictionary<string, Tensor> Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        using var reader = new BinaryReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: true), leaveOpen: true);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            long count = ReadLeb128(reader, path, "the entry count");
            for (long i = 0; i < count; i++)
            {
                string key = ReadKey(reader, path, i);
                if (tensors.ContainsKey(key))
                    throw Invalid(path, $"the key '{key}' appears twice");
                tensors.Add(key, ReadTensor(reader, stream, key, path));
            }
            if (stream.Position != stream.Length)
                throw Invalid(path, $"{stream.Length - stream.Position} bytes follow the last of the {count} entries");
        }
        catch
        {
            foreach (Tensor tensor in tensors.Values)
                tensor.Dispose();
            throw;
        }
        return tensors;
    }

    private static string ReadKey(BinaryReader reader, string path, long index)
    {
        try
        {
            return reader.ReadString();
        }
        catch (EndOfStreamException)
        {
            throw Invalid(path, $"the file ends inside the key of entry {index} (truncated file?)");
        }
        catch (Exception e) when (e is DecoderFallbackException or FormatException or IOException)
        {
            throw Invalid(path, $"the key of entry {index} is unreadable: {e.Message}");
        }
    }

    private static Tensor ReadTensor(BinaryReader reader, FileStream stream, string key, string path)
    {
        long typeCode = ReadLeb128(reader, path, $"the element type of '{key}'");
        var type = (ScalarType)typeCode;
        if (typeCode > sbyte.MaxValue || !Enum.IsDefined(type) || ElementTypes.SizeOf(type) is not int elementSize)
            throw Invalid(path, $"tensor '{key}' has unknown or unsupported element type code {typeCode}");

        long rank = ReadLeb128(reader, path, $"the rank of '{key}'");
        if (rank > MaxRank)
            throw Invalid(path, $"tensor '{key}' claims rank {rank}");
        var shape = new long[rank];
        for (int d = 0; d < rank; d++)
            shape[d] = ReadLeb128(reader, path, $"the shape of '{key}'");

        long remaining = stream.Length - stream.Position;
        if (ElementTypes.ElementCount(shape) is not long elements || elements > remaining / elementSize)
            throw Invalid(path,
                $"tensor '{key}' ({type}, shape {ElementTypes.FormatShape(shape)}) needs more than the {remaining} bytes left in the file (truncated file?)");

        Tensor tensor = empty(shape, type);
        try
        {
            TensorBytes.ForEachChunk(tensor, (chunk, _) => stream.ReadExactly(chunk));
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>Unsigned LEB128, as TorchSharp writes lengths and shapes.</summary>
    private static long ReadLeb128(BinaryReader reader, string path, string what)
    {
        long result = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte next;
            try
            {
                next = reader.ReadByte();
            }
            catch (EndOfStreamException)
            {
                throw Invalid(path, $"the file ends inside {what} (truncated file?)");
            }
            if (shift == 63 && next > 0)
                throw Invalid(path, $"{what} does not fit in 63 bits");
            result |= (long)(next & 0x7f) << shift;
            if ((next & 0x80) == 0)
                return result;
        }
    }

    private static InvalidDataException Invalid(string path, string problem)
        => new($"Invalid TorchSharp state-dict file '{path}': {problem}.");
}
