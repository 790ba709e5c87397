namespace CeDsl.IO;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content: the data goes
/// to a temporary file in the destination's directory (same file system, so the final rename is atomic),
/// is flushed to disk, and then replaces the destination. On any failure the temporary file is removed
/// and the destination is left as it was.
/// </summary>
internal static class AtomicFile
{
    /// <param name="path">The destination.</param>
    /// <param name="write">Writes the whole content; must not dispose the stream.</param>
    /// <param name="decorateOutput">Wraps the temporary file's stream; a seam for tests that inject write failures.</param>
    internal static void Write(string path, Action<Stream> write, Func<Stream, Stream>? decorateOutput = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string destination = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(destination)
            ?? throw new ArgumentException($"'{path}' names no file.", nameof(path));
        string temporary = Path.Combine(directory, $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.tmp");

        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                Stream output = decorateOutput?.Invoke(file) ?? file;
                write(output);
                output.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, destination, overwrite: true);
        }
        catch (Exception failure)
        {
            TryDelete(temporary);
            if (failure is IOException or UnauthorizedAccessException)
                throw new IOException($"Could not write '{destination}' (it was left unchanged): {failure.Message}", failure);
            throw;
        }
    }

    private static void TryDelete(string temporary)
    {
        try
        {
            File.Delete(temporary);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original failure is the one worth reporting.
        }
    }
}
