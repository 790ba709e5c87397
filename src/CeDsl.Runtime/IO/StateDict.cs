using System.Text;
using static TorchSharp.torch;
using Module = TorchSharp.torch.nn.Module;

namespace CeDsl.IO;

/// <summary>
/// Saves and loads a module's state dict (parameters and persistent buffers, under the keys of
/// <c>module.state_dict()</c>, which are PyTorch's names, e.g. <c>layer1.0.bn1.running_var</c>).
/// Saving follows the extension: ".safetensors" is the safetensors format PyTorch users exchange;
/// anything else is TorchSharp's own format (<c>Module.save</c> / <c>Module.load</c>). Loading
/// recognises the format by content: safetensors, TorchSharp's format, or a file PyTorch's
/// <c>torch.save</c> wrote (<c>.pt</c>, <c>.pth</c>: a state dict, or a checkpoint dict holding one under
/// "state_dict", DataParallel's "module." prefix removed), read like <c>torch.load(weights_only=True)</c>:
/// tensors and plain values only, any other Python global refused by name.
/// </summary>
public static class StateDict
{
    /// <summary>The metadata the Hugging Face tooling expects in a PyTorch safetensors checkpoint.</summary>
    private static readonly IReadOnlyDictionary<string, string> PyTorchMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>Saves the module's state dict. Atomic: the destination is replaced only once the complete file is on disk.</summary>
    public static void Save(Module module, string path) => Save(module, path, decorateOutput: null);

    internal static void Save(Module module, string path, Func<Stream, Stream>? decorateOutput)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);
        Dictionary<string, Tensor> state = module.state_dict();

        if (IsSafeTensors(path))
        {
            SafeTensors.Save(state, path, PyTorchMetadata, decorateOutput);
            return;
        }

        AtomicFile.Write(path, output =>
        {
            // TorchSharp's writer copies to CPU itself but cannot write non-contiguous tensors.
            using var scope = NewDisposeScope();
            var contiguous = state.ToDictionary(entry => entry.Key, entry => entry.Value.detach().contiguous());
            using var writer = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true);
            Module.save_state_dict(writer, contiguous);
        }, decorateOutput);
    }

    /// <summary>
    /// Copies a saved state dict into the module's existing parameters and buffers (keeping their
    /// device and element type). All or nothing: every key and shape is checked before anything is copied.
    /// Modules whose shapes depend on their state (<see cref="IResizableFromState"/>, e.g. a pruned layer)
    /// are first sized to the file's.
    /// </summary>
    /// <param name="module">The module to load into.</param>
    /// <param name="path">A safetensors file, a TorchSharp state-dict file or a PyTorch <c>torch.save</c> file.</param>
    /// <param name="strict">
    /// True: any missing key, unexpected key or shape mismatch throws <see cref="StateDictMismatchException"/>
    /// listing all of them, and the module is untouched. False: the keys present in both with equal
    /// shapes are loaded; the rest is reported.
    /// </param>
    /// <remarks>
    /// Element types need not match: like PyTorch's <c>load_state_dict</c> (which uses <c>copy_</c>),
    /// values are converted to the module's type (e.g. a float64 file into a float32 module, or an
    /// int64 <c>num_batches_tracked</c> into TorchSharp's float32 one); conversions are listed in
    /// <see cref="StateDictLoadReport.Conversions"/>.
    /// Unlike PyTorch, a non-strict load skips shape mismatches instead of failing.
    /// </remarks>
    /// <exception cref="StateDictMismatchException">Strict load and the keys or shapes differ.</exception>
    /// <exception cref="InvalidDataException">The file is corrupt; the message names the file and the problem.</exception>
    public static StateDictLoadReport Load(Module module, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);

        InputFile.Check(path, "State dict file");
        using var scope = NewDisposeScope();
        return CopyInto(module, Read(path), strict, path);
    }

    /// <summary>The formats <see cref="Load"/> reads.</summary>
    internal enum FileFormat { SafeTensors, TorchSharp, PyTorch }

    /// <summary>Every tensor of a state-dict file of any format <see cref="Load"/> reads (in the caller's dispose scope).</summary>
    internal static IReadOnlyDictionary<string, Tensor> Read(string path) => Detect(path) switch
    {
        FileFormat.SafeTensors => SafeTensors.Load(path),
        FileFormat.PyTorch => PyTorchStateDictFile.Read(path),
        _ => TorchSharpStateDictFile.Read(path),
    };

    /// <summary>
    /// The format of a state-dict file, from its first bytes: a zip archive is PyTorch's (torch.save since 1.6);
    /// a JSON header after the 8-byte length, or the ".safetensors" extension, is safetensors; anything else is
    /// taken for TorchSharp's format.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is in PyTorch's legacy format (before 1.6), which CeDsl does not read.</exception>
    internal static FileFormat Detect(string path)
    {
        Span<byte> start = stackalloc byte[9];
        int read;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
            read = stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false);
        start = start[..read];
        if (PyTorchStateDictFile.IsZip(start))
            return FileFormat.PyTorch;
        if (PyTorchStateDictFile.IsLegacy(start))
            throw new InvalidDataException(
                $"'{path}' was saved in PyTorch's legacy format (torch.save before PyTorch 1.6, or with _use_new_zipfile_serialization=False), " +
                "which CeDsl does not read; re-save it in PyTorch 1.6 or later: torch.save(torch.load(old_path), new_path).");
        if (IsSafeTensors(path) || (start.Length == 9 && start[8] == (byte)'{'))
            return FileFormat.SafeTensors;
        return FileFormat.TorchSharp;
    }

    private static StateDictLoadReport CopyInto(Module module, IReadOnlyDictionary<string, Tensor> source, bool strict, string path)
    {
        // Modules whose shapes depend on their state (IResizableFromState) are compared as they will be once sized for the file.
        var (shapes, resize) = StateResizing.Plan(module, source, path);

        var missing = shapes.Keys.Where(key => !source.ContainsKey(key)).ToList();
        var unexpected = source.Keys.Where(key => !shapes.ContainsKey(key)).ToList();
        var shapeMismatches = new List<ShapeMismatch>();
        var matching = new List<string>();
        foreach (var (key, shape) in shapes)
        {
            if (!source.TryGetValue(key, out Tensor? value))
                continue;
            if (value.shape.AsSpan().SequenceEqual(shape))
                matching.Add(key);
            else
                shapeMismatches.Add(new ShapeMismatch(key, value.shape, shape));
        }

        if (strict && (missing.Count > 0 || unexpected.Count > 0 || shapeMismatches.Count > 0))
            throw new StateDictMismatchException(path, module.GetName(), missing, unexpected, shapeMismatches);

        resize();
        Dictionary<string, Tensor> target = module.state_dict();

        // Convert everything first, so that a failure (e.g. out of memory) happens before the module changes.
        var conversions = new List<DtypeConversion>();
        var prepared = new List<(Tensor Destination, Tensor Value)>(matching.Count);
        foreach (string key in matching)
        {
            Tensor destination = target[key];
            Tensor value = source[key];
            if (value.dtype != destination.dtype)
                conversions.Add(new DtypeConversion(key, value.dtype, destination.dtype));
            prepared.Add((destination, value.to(destination.dtype, destination.device)));
        }

        using (no_grad())
        {
            foreach (var (destination, value) in prepared)
                destination.copy_(value);
        }

        return new StateDictLoadReport(matching, missing, unexpected, shapeMismatches, conversions);
    }

    private static bool IsSafeTensors(string path)
        => Path.GetExtension(path).Equals(".safetensors", StringComparison.OrdinalIgnoreCase);
}
