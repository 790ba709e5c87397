using System.IO.Compression;
using static TorchSharp.torch;

namespace CeDsl.IO;

/// <summary>
/// Reads a state dict saved by PyTorch's <c>torch.save</c> (<c>.pt</c>, <c>.pth</c>; the zip format PyTorch
/// writes since 1.6): the state dict itself, or a checkpoint dict holding it under <c>"state_dict"</c> (other
/// entries, such as an epoch or the optimizer's state, are ignored), with DataParallel's <c>module.</c> prefix
/// removed when every key has it.
/// </summary>
/// <remarks>
/// The zip holds <c>ROOT/data.pkl</c>, a pickle whose tensors refer to their storages, <c>ROOT/data/KEY</c>
/// (raw little-endian elements). The pickle is read by <see cref="WeightsOnlyUnpickler"/>, which allows exactly
/// what <c>torch.load(weights_only=True)</c> needs for a state dict and refuses any other Python global by name.
/// </remarks>
internal static class PyTorchStateDictFile
{
    private const string DataParallelPrefix = "module.";
    private const string RebuildTensor = "torch._utils._rebuild_tensor_v2";
    private const string RebuildParameter = "torch._utils._rebuild_parameter";
    private const string OrderedDict = "collections.OrderedDict";

    private static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["torch.DoubleStorage"] = ScalarType.Float64,
        ["torch.FloatStorage"] = ScalarType.Float32,
        ["torch.HalfStorage"] = ScalarType.Float16,
        ["torch.BFloat16Storage"] = ScalarType.BFloat16,
        ["torch.LongStorage"] = ScalarType.Int64,
        ["torch.IntStorage"] = ScalarType.Int32,
        ["torch.ShortStorage"] = ScalarType.Int16,
        ["torch.CharStorage"] = ScalarType.Int8,
        ["torch.ByteStorage"] = ScalarType.Byte,
        ["torch.BoolStorage"] = ScalarType.Bool,
        ["torch.ComplexFloatStorage"] = ScalarType.ComplexFloat32,
    };

    private static readonly HashSet<string> AllowedGlobals = [RebuildTensor, RebuildParameter, OrderedDict, .. StorageTypes.Keys];

    /// <summary>Whether the file starts like a zip archive (PyTorch's format since 1.6).</summary>
    internal static bool IsZip(ReadOnlySpan<byte> start) => start.Length >= 4 && start[..4].SequenceEqual("PK\u0003\u0004"u8);

    /// <summary>Whether the file starts like PyTorch's legacy (before 1.6) format: a pickled magic number.</summary>
    internal static bool IsLegacy(ReadOnlySpan<byte> start) =>
        start.Length >= 4 && start[0] == 0x80 && start[1] == 0x02 && start[2] == 0x8a && start[3] == 0x0a;

    /// <summary>The state dict of a <c>torch.save</c> file, as new CPU tensors (in the caller's dispose scope).</summary>
    /// <exception cref="InvalidDataException">Not a state dict PyTorch saved, a refused pickle, or a damaged file; the message names the file and the problem.</exception>
    internal static Dictionary<string, Tensor> Read(string path)
    {
        ZipArchive archive;
        try
        {
            archive = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw Invalid(path, $"it is not a readable zip archive ({e.Message.TrimEnd('.')})");
        }
        using (archive)
        using (var scope = NewDisposeScope())
        {
            var pickles = archive.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pickles.Count != 1)
                throw Invalid(path, "it has no ROOT/data.pkl entry, so it was not written by torch.save (a TorchScript archive, torch.jit.save, is not a state dict)");
            string root = pickles[0].FullName[..^"data.pkl".Length];
            var byteOrder = archive.GetEntry(root + "byteorder");
            if (byteOrder is not null && !ReadAll(byteOrder).AsSpan().SequenceEqual("little"u8))
                throw Invalid(path, "it was written on a big-endian machine");

            var storages = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var unpickler = new WeightsOnlyUnpickler(ReadAll(pickles[0]), $"'{path}' ({pickles[0].FullName})", AllowedGlobals,
                (global, arguments) => Reduce(global, arguments, path),
                id => LoadStorage(id, archive, root, storages, path));
            var state = StateDictOf(unpickler.Load(), path);
            foreach (var tensor in state.Values)
                tensor.MoveToOuterDisposeScope();
            return state;
        }
    }

    private static object Reduce(PickleGlobal global, object?[] arguments, string path)
    {
        switch (global.FullName)
        {
            case OrderedDict when arguments.Length == 0:
                return new PickleDict();
            case RebuildTensor when arguments.Length is 6 or 7 && arguments[0] is Tensor storage && arguments[1] is long offset
                                    && arguments[2] is PickleTuple size && arguments[3] is PickleTuple stride:
                return View(storage, offset, Longs(size, path), Longs(stride, path), path);
            case RebuildParameter when arguments.Length == 3 && arguments[0] is Tensor data:
                return data;
            default:
                throw Invalid(path, $"{global.FullName} is called with ({string.Join(", ", arguments.Select(WeightsOnlyUnpickler.TypeName))}), which a state dict never does");
        }
    }

    /// <summary>A storage (persistent id ('storage', type, key, location, numel)) as a 1-D tensor of its elements.</summary>
    private static Tensor LoadStorage(object? id, ZipArchive archive, string root, Dictionary<string, Tensor> storages, string path)
    {
        if (id is not PickleTuple { Items: ["storage", PickleGlobal type, string key, string, long numel] })
            throw Invalid(path, "a persistent id is not a storage ('storage', type, key, location, size)");
        if (!StorageTypes.TryGetValue(type.FullName, out var dtype))
            throw Invalid(path, $"storage '{key}' has the type {type.FullName}, which CeDsl does not read");
        if (storages.TryGetValue(key, out var known))
            return known;
        var entry = archive.GetEntry($"{root}data/{key}") ?? throw Invalid(path, $"the storage {root}data/{key} is missing");
        long bytes = numel * ElementTypes.SizeOf(dtype)!.Value;
        if (numel < 0 || entry.Length != bytes)
            throw Invalid(path, $"the storage {entry.FullName} holds {entry.Length} bytes, {numel} elements of {dtype} need {bytes}");
        var storage = empty([numel], dtype);
        using (var stream = entry.Open())
            TensorBytes.ForEachChunk(storage, (chunk, _) => stream.ReadExactly(chunk));
        storages[key] = storage;
        return storage;
    }

    /// <summary>A new contiguous tensor with the elements of storage.as_strided(size, stride, offset), bounds checked.</summary>
    private static Tensor View(Tensor storage, long offset, long[] size, long[] stride, string path)
    {
        if (size.Length != stride.Length || offset < 0 || size.Any(s => s < 0) || stride.Any(s => s < 0))
            throw Invalid(path, $"a tensor has size {ElementTypes.FormatShape(size)}, stride {ElementTypes.FormatShape(stride)} and offset {offset}");
        if (size.All(s => s > 0))
        {
            long last = offset;
            try
            {
                for (int d = 0; d < size.Length; d++)
                    last = checked(last + (size[d] - 1) * stride[d]);
            }
            catch (OverflowException)
            {
                last = long.MaxValue;
            }
            if (last >= storage.shape[0])
                throw Invalid(path, $"a tensor of size {ElementTypes.FormatShape(size)} reads past the end of its storage of {storage.shape[0]} elements");
        }
        return empty(size, storage.dtype).copy_(storage.as_strided(size, stride, offset));
    }

    /// <summary>The state dict in the unpickled object: the object itself or its "state_dict" entry; DataParallel's prefix removed.</summary>
    private static Dictionary<string, Tensor> StateDictOf(object? content, string path)
    {
        if (content is not PickleDict dict)
            throw Invalid(path, $"it holds a {WeightsOnlyUnpickler.TypeName(content)}, not a state dict");
        if (dict.Items.TryGetValue("state_dict", out var inner))
            dict = inner as PickleDict ?? throw Invalid(path, $"its \"state_dict\" entry is a {WeightsOnlyUnpickler.TypeName(inner)}, not a dict");
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name || value is not Tensor tensor)
                throw Invalid(path, $"its state dict maps the {WeightsOnlyUnpickler.TypeName(key)} {key} to a {WeightsOnlyUnpickler.TypeName(value)}; a state dict maps names to tensors");
            state.Add(name, tensor);
        }
        if (state.Count > 0 && state.Keys.All(k => k.StartsWith(DataParallelPrefix, StringComparison.Ordinal)))
            state = state.ToDictionary(kv => kv.Key[DataParallelPrefix.Length..], kv => kv.Value, StringComparer.Ordinal);
        return state;
    }

    private static long[] Longs(PickleTuple tuple, string path) =>
        tuple.Items.Select(item => item is long value ? value : throw Invalid(path, $"a tensor's size or stride holds a {WeightsOnlyUnpickler.TypeName(item)}")).ToArray();

    private static byte[] ReadAll(ZipArchiveEntry entry)
    {
        using var stream = entry.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static InvalidDataException Invalid(string path, string problem) => new($"'{path}' is not a PyTorch state dict CeDsl can read: {problem}.");
}
