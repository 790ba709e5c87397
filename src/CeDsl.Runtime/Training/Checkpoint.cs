using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CeDsl.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training;

/// <summary>A tensor stored in a checkpoint.</summary>
/// <param name="Name">The tensor's name, e.g. "layer1.0.conv1.weight".</param>
/// <param name="DType">Its element type, a <see cref="ScalarType"/> name.</param>
/// <param name="Shape">Its shape.</param>
public sealed record CheckpointTensorInfo(string Name, string DType, long[] Shape)
{
    internal string ShapeText => $"[{string.Join(", ", Shape)}] {DType}";
}

/// <summary>What a checkpoint holds besides its tensors.</summary>
/// <param name="Architecture">The name of the architecture the model state belongs to.</param>
/// <param name="ModelTensors">The model's parameters and buffers.</param>
/// <param name="Training">The training state, or null for a model-only checkpoint.</param>
public sealed record CheckpointInfo(string Architecture, IReadOnlyList<CheckpointTensorInfo> ModelTensors, CheckpointTrainingInfo? Training);

/// <summary>The training state recorded in a checkpoint.</summary>
/// <param name="Position">Where training stood.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Epochs">The run's planned epochs.</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="TrainImages">Number of training images.</param>
/// <param name="LearningRate">Base learning rate.</param>
/// <param name="Momentum">SGD momentum.</param>
/// <param name="Nesterov">Nesterov momentum.</param>
/// <param name="Schedule">The schedule's description.</param>
/// <param name="LabelSmoothing">Label smoothing of the training loss.</param>
/// <param name="ParameterGroups">The SGD parameter groups.</param>
/// <param name="Normalization">The input normalisation the model was trained with.</param>
/// <param name="PadTo">The input padding the model was trained with, or null.</param>
/// <param name="EpochLossSum">Sum of per-image losses of the epoch in progress.</param>
/// <param name="EpochCorrect">Correct predictions of the epoch in progress.</param>
/// <param name="EpochImages">Images trained in the epoch in progress.</param>
/// <param name="EpochSeconds">Training seconds of the epoch in progress.</param>
public sealed record CheckpointTrainingInfo(TrainingPosition Position, ulong Seed, int Epochs, int BatchSize, int TrainImages,
    double LearningRate, double Momentum, bool Nesterov, string Schedule, double LabelSmoothing,
    IReadOnlyList<ParameterGroupInfo> ParameterGroups, Normalization Normalization, int? PadTo,
    double EpochLossSum, long EpochCorrect, long EpochImages, double EpochSeconds);

/// <summary>A checkpoint does not fit the model or trainer it is loaded into; nothing was changed.</summary>
public sealed class CheckpointMismatchException(string message, IReadOnlyList<string> mismatches) : InvalidOperationException(message)
{
    /// <summary>Every mismatch found.</summary>
    public IReadOnlyList<string> Mismatches { get; } = mismatches;
}

/// <summary>
/// CeDsl checkpoints: "CEDSLCKP", format version (int32 LE), header length (int32 LE), a UTF-8 JSON
/// header (architecture, every tensor's name, dtype and shape, training state), the tensors' raw
/// little-endian bytes in header order, and a SHA-256 of everything before it. Written atomically;
/// loading checks the whole file and every name and shape before it changes anything.
/// </summary>
public static class Checkpoint
{
    /// <summary>The first 8 bytes of every checkpoint.</summary>
    public const string FileMagic = "CEDSLCKP";

    /// <summary>The format version written.</summary>
    public const int FormatVersion = 1;

    internal const string ModelPrefix = "model/";
    internal const string MomentumPrefix = "momentum/";
    internal const string TorchRngName = "rng/torch";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static readonly Dictionary<string, ScalarType> Types = new[]
    {
        ScalarType.Float32, ScalarType.Float64, ScalarType.Float16, ScalarType.BFloat16,
        ScalarType.Int64, ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    }.ToDictionary(t => t.ToString());

    /// <summary>Reads what a checkpoint holds, after checking its integrity.</summary>
    /// <exception cref="InvalidDataException">The file is not a complete, intact CeDsl checkpoint.</exception>
    public static CheckpointInfo ReadInfo(string path)
    {
        var (header, _, _) = ReadVerified(path);
        return header.ToInfo();
    }

    /// <summary>Writes a model-only checkpoint (parameters and buffers) of <paramref name="model"/>.</summary>
    public static void SaveModel(string path, nn.Module model, string architecture)
    {
        using var scope = torch.NewDisposeScope();
        Write(path, architecture, [.. model.state_dict().Select(kv => (ModelPrefix + kv.Key, kv.Value))], training: null);
    }

    /// <summary>
    /// Loads the model state of a checkpoint (training or model-only) into <paramref name="model"/>.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The checkpoint is of another architecture, or names or
    /// shapes differ; the model is unchanged.</exception>
    /// <exception cref="InvalidDataException">The file is damaged; the model is unchanged.</exception>
    public static CheckpointInfo LoadModel(string path, nn.Module model, string architecture)
    {
        var (header, bytes, payloadStart) = ReadVerified(path);
        var modelState = model.state_dict();
        var mismatches = CompareModel(header, architecture, modelState);
        if (mismatches.Count > 0)
            throw Mismatch(path, architecture, mismatches);
        using var scope = torch.NewDisposeScope();
        var tensors = Materialize(header, bytes, payloadStart);
        CopyModelState(tensors, modelState);
        return header.ToInfo();
    }

    internal static void Write(string path, string architecture, IReadOnlyList<(string Name, Tensor Tensor)> tensors, CheckpointTrainingInfo? training)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("CeDsl checkpoints are written on little-endian machines only.");
        using var scope = torch.NewDisposeScope();
        var cpu = tensors.Select(t => (t.Name, Tensor: t.Tensor.detach().cpu().contiguous())).ToList();
        var header = new CheckpointHeader(architecture,
            [.. cpu.Select(t => new CheckpointTensorInfo(t.Name, t.Tensor.dtype.ToString(), t.Tensor.shape))], training);
        foreach (var entry in header.Tensors)
        {
            if (!Types.ContainsKey(entry.DType))
                throw new NotSupportedException($"Checkpoint: tensor '{entry.Name}' has element type {entry.DType}, which checkpoints do not store.");
        }
        byte[] headerBytes = JsonSerializer.SerializeToUtf8Bytes(header, Json);

        AtomicFile.Write(path, stream =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            void Put(ReadOnlySpan<byte> bytes)
            {
                hash.AppendData(bytes);
                stream.Write(bytes);
            }
            Span<byte> word = stackalloc byte[4];
            Put(Encoding.ASCII.GetBytes(FileMagic));
            BinaryPrimitives.WriteInt32LittleEndian(word, FormatVersion);
            Put(word);
            BinaryPrimitives.WriteInt32LittleEndian(word, headerBytes.Length);
            Put(word);
            Put(headerBytes);
            foreach (var (_, tensor) in cpu)
            {
                if (tensor.numel() > 0)
                    Put(tensor.bytes);
            }
            stream.Write(hash.GetHashAndReset());
        });
    }

    /// <summary>Reads and checks the whole file: magic, version, lengths, checksum, header.</summary>
    internal static (CheckpointHeader Header, byte[] Bytes, int PayloadStart) ReadVerified(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);
        byte[] bytes = File.ReadAllBytes(path);
        const int prefix = 16, hashLength = 32;
        if (bytes.Length < 8 || Encoding.ASCII.GetString(bytes, 0, 8) != FileMagic)
            throw new InvalidDataException($"'{path}' is not a CeDsl checkpoint (it does not start with '{FileMagic}').");
        if (bytes.Length < prefix + hashLength)
            throw new InvalidDataException($"Checkpoint '{path}' is truncated ({bytes.Length} bytes).");
        int version = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        if (version != FormatVersion)
            throw new InvalidDataException($"Checkpoint '{path}' has format version {version}; this CeDsl reads version {FormatVersion}.");
        int headerLength = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12));
        if (headerLength < 0 || headerLength > bytes.Length - prefix - hashLength)
            throw new InvalidDataException($"Checkpoint '{path}' is truncated: its header alone should be {headerLength} bytes, the file has {bytes.Length}.");
        byte[] expectedHash = SHA256.HashData(bytes.AsSpan(0, bytes.Length - hashLength));
        if (!expectedHash.AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - hashLength)))
            throw new InvalidDataException($"Checkpoint '{path}' is truncated or corrupt: its SHA-256 checksum does not match.");

        CheckpointHeader header;
        try
        {
            header = JsonSerializer.Deserialize<CheckpointHeader>(bytes.AsSpan(prefix, headerLength), Json)
                ?? throw new InvalidDataException("empty header");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Checkpoint '{path}' has an unreadable header: {e.Message}", e);
        }
        long payload = 0;
        foreach (var entry in header.Tensors)
        {
            if (!Types.TryGetValue(entry.DType, out var type))
                throw new InvalidDataException($"Checkpoint '{path}': tensor '{entry.Name}' has unknown element type '{entry.DType}'.");
            payload += ElementCount(entry) * ElementSize(type);
        }
        if (payload != bytes.Length - prefix - headerLength - hashLength)
            throw new InvalidDataException($"Checkpoint '{path}': its header describes {payload} bytes of tensors, the file holds {bytes.Length - prefix - headerLength - hashLength}.");
        return (header, bytes, prefix + headerLength);
    }

    /// <summary>Creates every tensor of a verified checkpoint, in the caller's dispose scope.</summary>
    internal static Dictionary<string, Tensor> Materialize(CheckpointHeader header, byte[] bytes, int payloadStart)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        int offset = payloadStart;
        foreach (var entry in header.Tensors)
        {
            var type = Types[entry.DType];
            int length = checked((int)(ElementCount(entry) * ElementSize(type)));
            var tensor = torch.empty(entry.Shape, type);
            if (length > 0)
                tensor.bytes = bytes.AsSpan(offset, length);
            tensors.Add(entry.Name, tensor);
            offset += length;
        }
        return tensors;
    }

    /// <summary>Every way the checkpoint's model state differs from <paramref name="modelState"/>.</summary>
    internal static List<string> CompareModel(CheckpointHeader header, string architecture, IReadOnlyDictionary<string, Tensor> modelState)
    {
        var mismatches = new List<string>();
        if (header.Architecture != architecture)
            mismatches.Add($"architecture: the checkpoint is '{header.Architecture}', the model is '{architecture}'");
        var saved = header.Tensors.Where(t => t.Name.StartsWith(ModelPrefix, StringComparison.Ordinal))
            .ToDictionary(t => t.Name[ModelPrefix.Length..], StringComparer.Ordinal);
        foreach (var (name, tensor) in modelState)
        {
            var current = new CheckpointTensorInfo(name, tensor.dtype.ToString(), tensor.shape);
            if (!saved.TryGetValue(name, out var entry))
                mismatches.Add($"'{name}' {current.ShapeText} is missing from the checkpoint");
            else if (!entry.Shape.SequenceEqual(current.Shape) || entry.DType != current.DType)
                mismatches.Add($"'{name}': the checkpoint has {entry.ShapeText}, the model {current.ShapeText}");
        }
        foreach (var name in saved.Keys.Where(n => !modelState.ContainsKey(n)))
            mismatches.Add($"'{name}' {saved[name].ShapeText} is in the checkpoint but not in the model");
        return mismatches;
    }

    internal static CheckpointMismatchException Mismatch(string path, string target, IReadOnlyList<string> mismatches)
    {
        const int shown = 6;
        string list = string.Join("; ", mismatches.Take(shown)) + (mismatches.Count > shown ? $"; and {mismatches.Count - shown} more" : "");
        return new CheckpointMismatchException($"Checkpoint '{path}' does not fit {target}: {list}. Nothing was loaded.", mismatches);
    }

    internal static void CopyModelState(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, Tensor> modelState)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, target) in modelState)
            target.copy_(tensors[ModelPrefix + name]);
    }

    private static long ElementCount(CheckpointTensorInfo entry) => entry.Shape.Aggregate(1L, (n, size) => n * size);

    private static int ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}

/// <summary>The JSON header of a checkpoint file.</summary>
internal sealed record CheckpointHeader(string Architecture, List<CheckpointTensorInfo> Tensors, CheckpointTrainingInfo? Training)
{
    public CheckpointInfo ToInfo() => new(Architecture,
        [.. Tensors.Where(t => t.Name.StartsWith(Checkpoint.ModelPrefix, StringComparison.Ordinal))
            .Select(t => t with { Name = t.Name[Checkpoint.ModelPrefix.Length..] })],
        Training);
}
