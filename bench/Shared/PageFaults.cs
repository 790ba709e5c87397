using System.Globalization;

namespace CeDsl.Bench;

/// <summary>
/// The process's minor page faults, read around a timed pass: a warm-up goes on until no variant takes fresh memory
/// pages, since on this project's VM a 100 MB activation in fresh pages costs about 200 ms (linked into each benchmark).
/// </summary>
internal static class PageFaults
{
    /// <summary>Fewer faults than this in a pass: the allocators have settled.</summary>
    public const long Settled = 1000;

    /// <summary>Field 10 of /proc/self/stat (minflt); 0 where there is no procfs.</summary>
    public static long Minor() =>
        File.Exists("/proc/self/stat")
            ? long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7], CultureInfo.InvariantCulture)
            : 0;
}
