using System.Runtime.InteropServices;

namespace CeDsl.Tests.Shared;

/// <summary>
/// What glibc's malloc holds in use (glibc <c>mallinfo2</c>, summed over all arenas, mmapped chunks
/// included): libtorch's tensors and TorchSharp's native objects are allocated there. The memory
/// tests bound its growth rather than the process's resident size, which on this VM moves by up to
/// 170 MB between two measurements of the same steps: the kernel's DAMON pageout scheme takes back
/// pages left idle for a minute, and they come back when touched again, leak or no leak.
/// </summary>
internal static class MallocStatistics
{
    /// <summary>Bytes in use: allocated ordinary chunks plus mmapped chunks.</summary>
    public static long InUseBytes()
    {
        var info = mallinfo2();
        return checked((long)(info.uordblks + info.hblkhd));
    }

    /// <summary>VmRSS of this process, for the tests' reports.</summary>
    public static long ResidentBytes()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]) * 1024;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 mallinfo2();

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }
}
