using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace CeDsl.IO;

/// <summary>
/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
/// <c>{"dtype", "shape", "data_offsets": [begin, end)}</c> plus an optional <c>"__metadata__"</c>
/// string-to-string map, then the tensors' raw little-endian, row-major bytes.
/// </summary>
/// <remarks>
/// Element types: F64, F32, F16, BF16, C64, I64, I32, I16, I8, U8, BOOL. Files are written like the
/// reference writer: tensors sorted by descending dtype alignment, then by name (UTF-8 byte order),
/// packed without gaps; compact JSON with <c>"__metadata__"</c> first (its keys sorted); the header
/// padded with spaces to a multiple of 8 bytes.
/// </remarks>
public static class SafeTensors
{
    /// <summary>The header key that holds the free-form string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>The reference implementation refuses larger headers, and so does this one.</summary>
    internal const int MaxHeaderBytes = 100_000_000;

    private const int LengthPrefixBytes = 8;

    private sealed record Entry(string Name, ElementTypes.SafeTensorsType Type, long[] Shape, long Begin, long End);

    private sealed record Header(long DataStart, IReadOnlyList<Entry> Entries, IReadOnlyDictionary<string, string> Metadata);

    /// <summary>
    /// Reads every tensor of a safetensors file into new CPU tensors, in file order. The caller owns
    /// (and disposes) the returned tensors.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file; the message names the file and the problem.</exception>
    public static IReadOnlyDictionary<string, Tensor> Load(string path)
    {
        EnsureLittleEndianHost();
        InputFile.Check(path, "Safetensors file");
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Header header = ReadHeader(file, path);

        var tensors = new Dictionary<string, Tensor>(header.Entries.Count, StringComparer.Ordinal);
        try
        {
            foreach (Entry entry in header.Entries)
            {
                Tensor tensor = empty(entry.Shape, entry.Type.Type);
                tensors.Add(entry.Name, tensor);
                long start = header.DataStart + entry.Begin;
                TensorBytes.ForEachChunk(tensor, (chunk, offset) => ReadExactly(file, chunk, start + offset, path));
            }
        }
        catch
        {
            foreach (Tensor tensor in tensors.Values)
                tensor.Dispose();
            throw;
        }
        return tensors;
    }

    /// <summary>Reads the <c>"__metadata__"</c> map of a safetensors file (empty when absent), validating the whole header.</summary>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file.</exception>
    public static IReadOnlyDictionary<string, string> LoadMetadata(string path)
    {
        InputFile.Check(path, "Safetensors file");
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return ReadHeader(file, path).Metadata;
    }

    /// <summary>
    /// Writes tensors (any device, any layout: they are copied to CPU and made contiguous) to a
    /// safetensors file. Atomic: the destination is replaced only once the complete file is on disk.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor has an element type safetensors cannot store, or a name is reserved.</exception>
    public static void Save(IReadOnlyDictionary<string, Tensor> tensors, string path, IReadOnlyDictionary<string, string>? metadata = null)
        => Save(tensors, path, metadata, decorateOutput: null);

    internal static void Save(IReadOnlyDictionary<string, Tensor> tensors, string path,
        IReadOnlyDictionary<string, string>? metadata, Func<Stream, Stream>? decorateOutput)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentException.ThrowIfNullOrEmpty(path);
        EnsureLittleEndianHost();

        var (layout, tensorsInOrder) = PlanLayout(tensors);
        byte[] header = SerializeHeader(layout, metadata);

        AtomicFile.Write(path, output =>
        {
            Span<byte> prefix = stackalloc byte[LengthPrefixBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            output.Write(prefix);
            output.Write(header);
            foreach (Tensor tensor in tensorsInOrder)
                WriteData(tensor, output);
        }, decorateOutput);
    }

    /// <summary>Orders the tensors like the reference writer and assigns their data offsets; validates before anything is written.</summary>
    private static (List<Entry> Layout, List<Tensor> Tensors) PlanLayout(IReadOnlyDictionary<string, Tensor> tensors)
    {
        var planned = new List<(string Name, byte[] Utf8Name, ElementTypes.SafeTensorsType Type, Tensor Tensor)>(tensors.Count);
        foreach (var (name, tensor) in tensors)
        {
            if (name == MetadataKey)
                throw new ArgumentException($"'{MetadataKey}' is reserved for the metadata map and cannot name a tensor.", nameof(tensors));
            if (tensor is null)
                throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
            if (!ElementTypes.TryFromScalarType(tensor.dtype, out var type))
                throw new ArgumentException(
                    $"Tensor '{name}' has element type {tensor.dtype}, which cannot be written to safetensors " +
                    $"(supported: {ElementTypes.SupportedSafeTensorsNames}).", nameof(tensors));
            planned.Add((name, Encoding.UTF8.GetBytes(name), type, tensor));
        }

        planned.Sort((left, right) =>
        {
            int byAlignment = right.Type.AlignmentRank.CompareTo(left.Type.AlignmentRank);
            return byAlignment != 0 ? byAlignment : left.Utf8Name.AsSpan().SequenceCompareTo(right.Utf8Name);
        });

        var layout = new List<Entry>(planned.Count);
        long offset = 0;
        foreach (var (name, _, type, tensor) in planned)
        {
            long size = tensor.NumberOfElements * type.Size;
            layout.Add(new Entry(name, type, tensor.shape, offset, offset + size));
            offset += size;
        }
        return (layout, planned.ConvertAll(p => p.Tensor));
    }

    private static byte[] SerializeHeader(IReadOnlyList<Entry> layout, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // The reference (serde_json) escapes only what JSON requires; the default encoder would also
        // escape '+', '<', non-ASCII, ... which is valid but needlessly different.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(pair => pair.Key, StringComparer.Ordinal))
                {
                    if (value is null)
                        throw new ArgumentException($"Metadata value '{key}' is null; safetensors metadata maps strings to strings.", nameof(metadata));
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            foreach (Entry entry in layout)
            {
                json.WriteStartObject(entry.Name);
                json.WriteString("dtype", entry.Type.Name);
                json.WriteStartArray("shape");
                foreach (long dimension in entry.Shape)
                    json.WriteNumberValue(dimension);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(entry.Begin);
                json.WriteNumberValue(entry.End);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }

        int padded = (buffer.WrittenCount + LengthPrefixBytes - 1) / LengthPrefixBytes * LengthPrefixBytes;
        if (padded > MaxHeaderBytes)
            throw new ArgumentException($"The safetensors header would be {padded} bytes, more than the format's limit of {MaxHeaderBytes}.");
        byte[] header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static void WriteData(Tensor tensor, Stream output)
    {
        using var scope = NewDisposeScope();
        Tensor bytesSource = tensor.detach().cpu().contiguous();
        TensorBytes.ForEachChunk(bytesSource, (chunk, _) => output.Write(chunk));
    }

    private static Header ReadHeader(SafeFileHandle file, string path)
    {
        long length = RandomAccess.GetLength(file);
        if (length < LengthPrefixBytes)
            throw Invalid(path, $"the file is {length} bytes long, too short for the 8-byte header length (truncated file?)");

        Span<byte> prefix = stackalloc byte[LengthPrefixBytes];
        ReadExactly(file, prefix, 0, path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        long available = length - LengthPrefixBytes;
        if (headerLength > (ulong)available)
            throw Invalid(path, $"the header length {headerLength} runs past the end of the file (only {available} bytes follow the length prefix; truncated file or not a safetensors file?)");
        if (headerLength > MaxHeaderBytes)
            throw Invalid(path, $"the header length {headerLength} exceeds the format's limit of {MaxHeaderBytes} bytes");

        byte[] headerBytes = new byte[(int)headerLength];
        ReadExactly(file, headerBytes, LengthPrefixBytes, path);
        var (entries, metadata) = ParseHeader(headerBytes, path);

        long dataLength = available - (long)headerLength;
        ValidateLayout(entries, dataLength, path);
        return new Header(LengthPrefixBytes + (long)headerLength, entries, metadata);
    }

    private static (List<Entry> Entries, IReadOnlyDictionary<string, string> Metadata) ParseHeader(byte[] header, string path)
    {
        if (header.Length == 0 || header[0] != (byte)'{')
            throw Invalid(path, "the header does not start with '{' (malformed JSON header or not a safetensors file)");
        if (!Utf8.IsValid(header))
            throw Invalid(path, "the header is not valid UTF-8");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"the header is not valid JSON: {e.Message}");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Invalid(path, $"the header is a JSON {document.RootElement.ValueKind}, not an object");

            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Invalid(path, $"the header has the key '{property.Name}' twice");
                if (property.Name == MetadataKey)
                    ParseMetadata(property.Value, metadata, path);
                else
                    entries.Add(ParseEntry(property.Name, property.Value, path));
            }
            return (entries, metadata);
        }
    }

    private static void ParseMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"'{MetadataKey}' is a JSON {value.ValueKind}; it must map strings to strings");
        foreach (JsonProperty item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Invalid(path, $"'{MetadataKey}' entry '{item.Name}' is a JSON {item.Value.ValueKind}; metadata values must be strings");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw Invalid(path, $"'{MetadataKey}' has the key '{item.Name}' twice");
        }
    }

    private static Entry ParseEntry(string name, JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"tensor '{name}' is described by a JSON {value.ValueKind}, not an object");

        if (!value.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Invalid(path, $"tensor '{name}' has no string 'dtype'");
        string dtype = dtypeElement.GetString()!;
        if (!ElementTypes.TryFromSafeTensorsName(dtype, out var type))
            throw Invalid(path, $"tensor '{name}' has unknown or unsupported dtype '{dtype}' (supported: {ElementTypes.SupportedSafeTensorsNames})");

        long[] shape = ReadNonNegativeIntegers(value, "shape", name, path);
        long[] offsets = ReadNonNegativeIntegers(value, "data_offsets", name, path);
        if (offsets.Length != 2)
            throw Invalid(path, $"tensor '{name}' has {offsets.Length} data_offsets; expected [begin, end]");
        var (begin, end) = (offsets[0], offsets[1]);
        if (end < begin)
            throw Invalid(path, $"tensor '{name}' has data_offsets [{begin}, {end}) that end before they begin");

        if (ElementTypes.ElementCount(shape) is not long elements || elements > long.MaxValue / type.Size)
            throw Invalid(path, $"tensor '{name}' has shape {ElementTypes.FormatShape(shape)}, too large to address");
        long byteCount = elements * type.Size;
        if (end - begin != byteCount)
            throw Invalid(path,
                $"tensor '{name}' has data_offsets [{begin}, {end}) spanning {end - begin} bytes, but dtype {dtype} " +
                $"with shape {ElementTypes.FormatShape(shape)} needs {byteCount} bytes");

        return new Entry(name, type, shape, begin, end);
    }

    private static long[] ReadNonNegativeIntegers(JsonElement entry, string field, string name, string path)
    {
        if (!entry.TryGetProperty(field, out JsonElement array) || array.ValueKind != JsonValueKind.Array)
            throw Invalid(path, $"tensor '{name}' has no '{field}' array");
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long number) || number < 0)
                throw Invalid(path, $"tensor '{name}' has '{field}' entry {item.GetRawText()}, not a non-negative integer");
            values[i++] = number;
        }
        return values;
    }

    /// <summary>Sorts the entries into file order and checks that they tile the data section exactly.</summary>
    private static void ValidateLayout(List<Entry> entries, long dataLength, string path)
    {
        entries.Sort((left, right) => left.Begin != right.Begin ? left.Begin.CompareTo(right.Begin) : left.End.CompareTo(right.End));

        foreach (Entry entry in entries)
        {
            if (entry.End > dataLength)
                throw Invalid(path,
                    $"tensor '{entry.Name}' has data_offsets [{entry.Begin}, {entry.End}) past the end of the " +
                    $"{dataLength}-byte data section (truncated file?)");
        }

        long covered = 0;
        Entry? previous = null;
        foreach (Entry entry in entries)
        {
            if (entry.Begin < covered)
                throw Invalid(path,
                    $"tensors '{previous!.Name}' [{previous.Begin}, {previous.End}) and '{entry.Name}' " +
                    $"[{entry.Begin}, {entry.End}) overlap");
            if (entry.Begin > covered)
                throw Invalid(path, $"bytes [{covered}, {entry.Begin}) of the data section belong to no tensor (the data must be contiguous)");
            covered = entry.End;
            previous = entry;
        }
        if (covered != dataLength)
            throw Invalid(path, $"the data section is {dataLength} bytes but the tensors cover only [0, {covered}) (trailing bytes)");
    }

    private static void ReadExactly(SafeFileHandle file, Span<byte> destination, long fileOffset, string path)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(file, destination, fileOffset);
            if (read == 0)
                throw Invalid(path, $"the file ended at byte {fileOffset} while reading (was it truncated while being read?)");
            destination = destination[read..];
            fileOffset += read;
        }
    }

    private static InvalidDataException Invalid(string path, string problem)
        => new($"Invalid safetensors file '{path}': {problem}.");

    private static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors stores little-endian data; big-endian hosts are not supported.");
    }
}
