using CeDsl.IO;

namespace CeDsl.Cli.Commands;

/// <summary>
/// The run directory of a <c>cedsl train</c> while it trains: created, locked against a second
/// <c>cedsl train</c> (an OS lock on <see cref="LockFile"/>, which the system releases when the process
/// ends, however it ends), checked again under the lock to hold no other run, and cleaned of the
/// temporary files a save cut short by a crash left behind.
/// </summary>
internal sealed class RunDirectory : IDisposable
{
    /// <summary>The file whose lock marks the directory as in use; it stays, empty, after the run.</summary>
    public const string LockFile = ".cedsl-train.lock";


    private readonly FileStream _lock;

    private RunDirectory(FileStream lockFile) => _lock = lockFile;

    /// <summary>
    /// Refuses a run directory that holds a run this invocation would overwrite: without --resume, any
    /// run (unless --force); with --resume, a run other than the one resumed. Called before the images
    /// are read, and again under the lock.
    /// </summary>
    public static void CheckNotOverwriting(TrainSettings settings)
    {
        if (File.Exists(settings.OutDirectory))
            throw new UserException($"--out: '{settings.OutDirectory}' is a file; give a directory (it is created if missing).");
        string[] held = [.. new[] { settings.CheckpointPath, settings.MetricsPath }.Where(File.Exists).Select(Path.GetFileName)!];
        if (held.Length == 0 || settings.Force)
            return;
        if (settings.Resume is null)
            throw new UserException($"--out: '{settings.OutDirectory}' already holds a run ({string.Join(", ", held)}); continue it with --resume {settings.CheckpointPath}, start over with --force, or choose another --out.");
        if (Path.GetFullPath(settings.Resume) != Path.GetFullPath(settings.CheckpointPath))
            throw new UserException($"--out: '{settings.OutDirectory}' already holds another run ({string.Join(", ", held)}), which continuing '{settings.Resume}' there would overwrite; choose another --out, or continue that run with --resume {settings.CheckpointPath}.");
    }

    /// <summary>Creates and locks the directory, checks it again, and removes what a crash or --force leaves to remove.</summary>
    /// <exception cref="UserException">Another cedsl train holds the lock, the directory cannot be written, or it holds a run.</exception>
    public static RunDirectory Open(TrainSettings settings, TextWriter notes)
    {
        string directory = settings.OutDirectory;
        FileStream lockFile;
        try
        {
            Directory.CreateDirectory(directory);
            lockFile = new FileStream(Path.Combine(directory, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (IsHeldByAnother(e))
        {
            throw new UserException($"--out: another cedsl train is writing to '{directory}' (it holds the lock on {LockFile}); wait for it to end or choose another --out.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserException($"--out: cannot write in '{directory}': {e.Message}", e);
        }
        try
        {
            CheckNotOverwriting(settings);
            if (settings.Force)
            {
                File.Delete(settings.CheckpointPath);
                File.Delete(settings.MetricsPath);
            }
            var leftovers = AtomicFile.LeftoverTemporaryFiles(settings.CheckpointPath).Concat(AtomicFile.LeftoverTemporaryFiles(settings.MetricsPath)).ToList();
            foreach (string file in leftovers)
                File.Delete(file);
            if (leftovers.Count > 0)
                notes.WriteLine($"cedsl train: note: removed {leftovers.Count} temporary file(s) that an interrupted save left in '{directory}' ({string.Join(", ", leftovers.Select(Path.GetFileName))})");
            return new RunDirectory(lockFile);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
    }

    public void Dispose() => _lock.Dispose();

    /// <summary>.NET reports a lock another process holds as a sharing violation: ERROR_SHARING_VIOLATION on Windows, EWOULDBLOCK from flock on Unix.</summary>
    private static bool IsHeldByAnother(IOException e) =>
        e.HResult == (OperatingSystem.IsWindows() ? unchecked((int)0x80070020) : OperatingSystem.IsMacOS() ? 35 : 11);
}
