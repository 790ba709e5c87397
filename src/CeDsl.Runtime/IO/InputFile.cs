namespace CeDsl.IO;

/// <summary>The check every reader makes before opening a file, so that a directory is not reported as a missing file.</summary>
internal static class InputFile
{
    /// <param name="path">The file to read.</param>
    /// <param name="kind">What it should be, for the message, e.g. "Checkpoint" or "IDX file".</param>
    /// <exception cref="FileNotFoundException">Nothing is at <paramref name="path"/>, or a directory is.</exception>
    internal static void Check(string path, string kind)
    {
        if (Directory.Exists(path))
            throw new FileNotFoundException($"{kind} '{path}' is a directory, not a file.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{kind} '{path}' does not exist.", path);
    }
}
