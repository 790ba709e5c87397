using System.Runtime.InteropServices;

namespace CeDsl.Platform;

/// <summary>
/// How the C heap that libtorch allocates tensors from treats freed memory. glibc hands every block
/// above its mmap threshold (at most 32 MiB) back to the kernel when it is freed, so a network whose
/// activations reach that (a batch of 128 with 64 channels of 32x32, for instance) gets
/// fresh pages for each of them at every step, and the kernel must fault in and zero every page.
/// Where faults are dear, in virtual machines above all, that costs more than the arithmetic on
/// the pages. <see cref="KeepFreedMemory"/> makes glibc keep freed memory for the next allocation,
/// as <c>MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...</c> in the environment
/// would: a process then holds on to its peak memory until it exits.
/// </summary>
public static class NativeHeap
{
    // mallopt's parameters (glibc's malloc.h), each with the environment variables that set it instead.
    private static readonly (int Parameter, int Value, string[] Variables)[] Settings =
    [
        (-8, 1, ["MALLOC_ARENA_MAX"]), // M_ARENA_MAX: one arena
        (-4, 0, ["MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_"]), // M_MMAP_MAX: no block gets its own mapping
        (-1, int.MaxValue, ["MALLOC_TRIM_THRESHOLD_"]), // M_TRIM_THRESHOLD: the heap's top is not given back
    ];

    /// <summary>
    /// Makes glibc keep freed memory for reuse: one arena, no blocks with their own mapping, no trimming
    /// of the heap's top. Call it first thing in <c>Main</c>, as the <c>cedsl</c> command line does: glibc
    /// gives each thread its arena once, so the settings reach the main thread and the threads that first
    /// allocate after the call, not a thread that already has an arena of its own. A setting the environment
    /// chooses (its <c>MALLOC_*</c> variable, or any <c>glibc.malloc</c> tunable in <c>GLIBC_TUNABLES</c>) is
    /// left as it is.
    /// </summary>
    /// <returns>
    /// False where the C library is not glibc (nothing changes) or glibc refused a setting (a speed setting, so
    /// no exception: the process runs on as before); true otherwise.
    /// </returns>
    public static bool KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc) || !NativeLibrary.TryGetExport(libc, "gnu_get_libc_version", out _))
            return false;
        if (Environment.GetEnvironmentVariable("GLIBC_TUNABLES")?.Contains("glibc.malloc.", StringComparison.Ordinal) == true)
            return true;
        bool taken = true;
        foreach (var (parameter, value, variables) in Settings)
        {
            if (variables.All(name => Environment.GetEnvironmentVariable(name) is null))
                taken &= Mallopt(parameter, value) == 1;
        }
        return taken;
    }

    [DllImport("libc.so.6", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);
}
