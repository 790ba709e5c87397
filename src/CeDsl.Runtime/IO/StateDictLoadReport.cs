using static TorchSharp.torch;

namespace CeDsl.IO;

/// <summary>A key present in both the file and the module whose shapes differ.</summary>
public sealed record ShapeMismatch(string Key, IReadOnlyList<long> FileShape, IReadOnlyList<long> ModuleShape)
{
    /// <inheritdoc/>
    public override string ToString()
        => $"{Key}: file {ElementTypes.FormatShape(FileShape)}, module {ElementTypes.FormatShape(ModuleShape)}";
}

/// <summary>A loaded key whose element type was converted (as PyTorch's <c>copy_</c> does) to the module's.</summary>
public sealed record DtypeConversion(string Key, ScalarType FileType, ScalarType ModuleType)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Key}: {FileType} -> {ModuleType}";
}

/// <summary>What <see cref="StateDict.Load"/> copied into the module and what it left alone.</summary>
public sealed class StateDictLoadReport
{
    internal StateDictLoadReport(IReadOnlyList<string> loaded, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
        IReadOnlyList<ShapeMismatch> shapeMismatches, IReadOnlyList<DtypeConversion> conversions)
    {
        Loaded = loaded;
        Missing = missing;
        Unexpected = unexpected;
        ShapeMismatches = shapeMismatches;
        Conversions = conversions;
    }

    /// <summary>Module keys that were overwritten from the file.</summary>
    public IReadOnlyList<string> Loaded { get; }

    /// <summary>Module keys the file lacks (left unchanged). Always empty after a strict load.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>File keys the module lacks (ignored). Always empty after a strict load.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>Keys skipped because the shapes differ (module entry unchanged). Always empty after a strict load.</summary>
    public IReadOnlyList<ShapeMismatch> ShapeMismatches { get; }

    /// <summary>Loaded keys whose element type differed and was converted to the module's.</summary>
    public IReadOnlyList<DtypeConversion> Conversions { get; }

    /// <summary>True when every module key was loaded and every file key was used.</summary>
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatches.Count == 0;
}
