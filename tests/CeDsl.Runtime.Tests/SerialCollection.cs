namespace CeDsl.Runtime.Tests;

/// <summary>
/// Tests that use process-wide state (torch's global generator, its thread count, resident memory)
/// run in this collection, alone, after the parallel tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "Serial";
}
