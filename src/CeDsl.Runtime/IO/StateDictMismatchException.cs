using System.Text;

namespace CeDsl.IO;

/// <summary>
/// A strict <see cref="StateDict.Load"/> found keys or shapes that do not match the module. Nothing
/// was copied into the module. The message lists every problem by name.
/// </summary>
public sealed class StateDictMismatchException : Exception
{
    /// <summary>Creates the exception; the message is built from the lists.</summary>
    public StateDictMismatchException(string path, string moduleName, IReadOnlyList<string> missing,
        IReadOnlyList<string> unexpected, IReadOnlyList<ShapeMismatch> shapeMismatches)
        : base(Describe(path, moduleName, missing, unexpected, shapeMismatches))
    {
        Path = path;
        ModuleName = moduleName;
        Missing = missing;
        Unexpected = unexpected;
        ShapeMismatches = shapeMismatches;
    }

    /// <summary>The state-dict file.</summary>
    public string Path { get; }

    /// <summary>The name of the module that was being loaded.</summary>
    public string ModuleName { get; }

    /// <summary>Keys of the module's state dict that the file does not contain.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>Keys in the file that the module's state dict does not contain.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>Keys in both whose shapes differ.</summary>
    public IReadOnlyList<ShapeMismatch> ShapeMismatches { get; }

    private static string Describe(string path, string moduleName, IReadOnlyList<string> missing,
        IReadOnlyList<string> unexpected, IReadOnlyList<ShapeMismatch> shapeMismatches)
    {
        var message = new StringBuilder($"State dict '{path}' does not match module '{moduleName}'; nothing was loaded.");
        AppendSection(message, "missing from the file", missing);
        AppendSection(message, "unexpected in the file", unexpected);
        AppendSection(message, "shape mismatches", shapeMismatches);
        return message.ToString();
    }

    private static void AppendSection<T>(StringBuilder message, string title, IReadOnlyList<T> items)
    {
        if (items.Count == 0)
            return;
        message.Append('\n').Append(title).Append(" (").Append(items.Count).Append("):");
        foreach (T item in items)
            message.Append("\n  ").Append(item);
    }
}
