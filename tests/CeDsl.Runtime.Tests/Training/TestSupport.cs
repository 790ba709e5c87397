namespace CeDsl.Runtime.Tests.Training;

/// <summary>
/// Tests that use process-wide state (torch's global generator, its thread count, resident memory)
/// run in this collection, alone, after the parallel tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialTrainingCollection
{
    public const string Name = "Serial training";
}

/// <summary>A synchronous <see cref="IProgress{T}"/> (BCL's Progress posts to the thread pool).</summary>
internal sealed class ActionProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

internal sealed class TemporaryDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("cedsl-training-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
