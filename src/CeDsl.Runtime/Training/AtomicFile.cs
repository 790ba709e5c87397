namespace CeDsl.Training;

/// <summary>
/// Writes files so that a reader sees either the old content or the complete new one: the content
/// goes to a temporary file in the same directory, is flushed to disk, and is then renamed over the
/// destination (rename is atomic within a file system). On failure the temporary file is removed
/// and the destination is untouched.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> with whatever <paramref name="write"/> puts in the stream.</summary>
    /// <exception cref="DirectoryNotFoundException">The destination directory does not exist.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        string destination = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(destination)!;
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Cannot write '{destination}': directory '{directory}' does not exist.");
        string temporary = Path.Combine(directory, $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, destination, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
