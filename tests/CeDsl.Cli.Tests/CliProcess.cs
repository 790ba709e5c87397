using System.Diagnostics;
using System.Runtime.InteropServices;

namespace CeDsl.Cli.Tests;

/// <summary>
/// <c>cedsl</c> run as a child process, as from a shell, for what only a process shows: the exit code
/// of an unhandled exception or a signal, signals sent while it trains, locks held by another
/// process, file systems that are full or read-only, and native code that may kill the process.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    public const int SigInt = 2;
    public const int SigTerm = 15;

    /// <summary>Generous: a child loads libtorch and may train while the other test projects run.</summary>
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    private readonly Process _process;
    private readonly TimeSpan _timeout;
    private readonly List<string> _output = [];
    private readonly List<string> _error = [];

    private CliProcess(string fileName, IEnumerable<string> args, TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        _timeout = timeout ?? DefaultTimeout;
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => Add(_output, e.Data);
        _process.ErrorDataReceived += (_, e) => Add(_error, e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.StandardInput.Close();
    }

    /// <summary>
    /// One intra-op thread, for children whose speed a test does not measure: on a loaded machine libtorch's spinning
    /// OpenMP threads make a run several times longer (and the oneDNN crash happens with one thread as with two).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> OneThread = new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" };

    /// <summary>The cedsl executable the test project's build put beside the tests.</summary>
    public static string Executable => Path.Combine(AppContext.BaseDirectory, "cedsl");

    /// <summary>
    /// Starts <c>cedsl <paramref name="args"/></c>, with SIGINT and SIGTERM at their default dispositions
    /// (a process started in the background by a shell without job control inherits SIGINT ignored).
    /// </summary>
    public static CliProcess Start(params string[] args) => new("env", ["--default-signal=INT,TERM", Executable, .. args]);

    /// <summary>Runs <c>cedsl <paramref name="args"/></c> to its end.</summary>
    public static CliResult Run(params string[] args)
    {
        using var process = Start(args);
        return process.WaitForExit();
    }

    /// <summary>Runs <c>cedsl <paramref name="args"/></c> to its end with extra <paramref name="environment"/> variables.</summary>
    public static CliResult Run(TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var process = new CliProcess("env", ["--default-signal=INT,TERM", Executable, .. args], timeout, environment);
        return process.WaitForExit();
    }

    /// <summary>"exit code 136 (killed by signal 8, SIGFPE)" for a child killed by a signal, "exit code 1" otherwise.</summary>
    public static string DescribeExit(int exitCode) => exitCode switch
    {
        > 128 and < 160 => $"exit code {exitCode} (killed by signal {exitCode - 128}{(exitCode - 128) switch { 6 => ", SIGABRT", 8 => ", SIGFPE", 9 => ", SIGKILL", 11 => ", SIGSEGV", _ => "" }})",
        _ => $"exit code {exitCode}",
    };

    /// <summary>
    /// Runs <c>cedsl <paramref name="args"/></c> in a private mount namespace in which
    /// <paramref name="directory"/> is a new tmpfs with <paramref name="mountOptions"/> (e.g. "size=1m" or "ro"),
    /// so a test can fill a disk or write to a read-only one without privileges (see <see cref="PrivateMountsFactAttribute"/>).
    /// </summary>
    public static CliResult RunWithTmpfs(string directory, string mountOptions, params string[] args)
    {
        string[] wrapped = ["--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o \"$1\" tmpfs \"$2\" && shift 2 && exec \"$@\"",
            "sh", mountOptions, directory, Executable, .. args];
        using var process = new CliProcess("unshare", wrapped);
        return process.WaitForExit();
    }

    /// <summary>Waits until a line of standard output satisfies <paramref name="match"/> and returns it.</summary>
    public string WaitForOutput(Func<string, bool> match)
    {
        var deadline = Stopwatch.StartNew();
        lock (_output)
        {
            while (true)
            {
                if (_output.FirstOrDefault(match) is { } line)
                    return line;
                if (_process.HasExited && deadline.Elapsed > TimeSpan.FromSeconds(1) || deadline.Elapsed > _timeout)
                    throw new TimeoutException($"cedsl never printed the awaited line.\n{Result(_process.HasExited ? _process.ExitCode : -1)}");
                Monitor.Wait(_output, TimeSpan.FromMilliseconds(200));
            }
        }
    }

    /// <summary>Sends <paramref name="signal"/> (<see cref="SigInt"/>, <see cref="SigTerm"/>) to the process.</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Waits for the process to end; its exit code and everything it printed.</summary>
    public CliResult WaitForExit()
    {
        if (!_process.WaitForExit(_timeout))
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"cedsl did not end within {_timeout}.\n{Result(-1)}");
        }
        _process.WaitForExit(); // drains the output handlers
        return Result(_process.ExitCode);
    }

    /// <summary>Kills the process if it still runs (SIGKILL, no clean exit) and waits until it is gone.</summary>
    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
    }

    private CliResult Result(int exitCode)
    {
        lock (_output)
        lock (_error)
            return new CliResult(exitCode, string.Concat(_output.Select(l => l + "\n")), string.Concat(_error.Select(l => l + "\n")));
    }

    private static void Add(List<string> lines, string? line)
    {
        if (line is null)
            return;
        lock (lines)
        {
            lines.Add(line);
            Monitor.PulseAll(lines);
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}

/// <summary>
/// A test that needs <see cref="CliProcess.RunWithTmpfs"/>: skipped, with the reason, where this
/// machine does not let an unprivileged process mount a tmpfs in its own namespaces.
/// </summary>
public sealed class PrivateMountsFactAttribute : FactAttribute
{
    private static readonly Lazy<bool> Available = new(() =>
    {
        try
        {
            using var probe = Process.Start(new ProcessStartInfo("unshare", ["--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /tmp"])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            })!;
            return probe.WaitForExit(30_000) && probe.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    });

    public PrivateMountsFactAttribute()
    {
        if (!Available.Value)
            Skip = "unshare cannot mount a tmpfs in a private namespace here";
    }
}
