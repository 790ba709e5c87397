namespace CeDsl.IO;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content: the data goes
/// to a temporary file in the destination's directory (same file system, so the final rename is atomic),
/// is flushed to disk, and then replaces the destination. On any failure the temporary file is removed
/// and the destination is left as it was. The destination's folder is created if it is missing.
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
        string temporary = TemporaryName(destination);

        try
        {
            Directory.CreateDirectory(directory);
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

    /// <summary>
    /// Checks, without touching the destination, that <see cref="Write"/> could write <paramref name="bytes"/>
    /// bytes to <paramref name="path"/> now: creates its folder, then creates, reserves the space of
    /// (where the file system supports reserving) and deletes a temporary file beside it.
    /// </summary>
    /// <exception cref="IOException">The folder cannot be created or written, or the disk lacks the space; the message names the path.</exception>
    internal static void CheckWritable(string path, long bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string destination = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(destination)
            ?? throw new ArgumentException($"'{path}' names no file.", nameof(path));
        string temporary = TemporaryName(destination);
        try
        {
            if (Directory.Exists(destination))
                throw new IOException("a directory has that name");
            Directory.CreateDirectory(directory);
            new FileStream(temporary, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, PreallocationSize = bytes }).Dispose();
            File.Delete(temporary);
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            throw new IOException($"Cannot write '{destination}': {failure.Message}", failure);
        }
    }

    /// <summary>The temporary files <see cref="Write"/> left beside <paramref name="path"/> when its process was killed mid-write.</summary>
    internal static IEnumerable<string> LeftoverTemporaryFiles(string path)
    {
        string destination = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(destination)!;
        return Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, $".{Path.GetFileName(destination)}.*.tmp").Where(f => Guid.TryParseExact(Path.GetFileName(f)[(Path.GetFileName(destination).Length + 2)..^4], "N", out _))
            : [];
    }

    private static string TemporaryName(string destination) =>
        Path.Combine(Path.GetDirectoryName(destination)!, $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.tmp");

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
