using System.Diagnostics;
using System.Text;

namespace CeDsl.Python.Tests;

/// <summary>The outcome of one Python run: exit code and everything it printed.</summary>
public sealed record PythonResult(string CommandLine, int ExitCode, string Output, TimeSpan Duration)
{
    public string Describe() => $"`{CommandLine}` exited with {ExitCode} after {Duration.TotalSeconds:F0} s:\n{Output}";
}

/// <summary>
/// Runs Debian's python3-torch (<c>/usr/bin/python3</c>, or <c>CEDSL_PYTHON</c>) on the scripts copied beside
/// the tests, with <c>python/cedsl_torch</c> (also copied) importable. A missing PyTorch is an error naming
/// the package to install, never a skipped test.
/// </summary>
internal static class PythonTorch
{
    public const string InstallCommand = "apt-get update && apt-get install -y python3-torch";

    public static string Executable { get; } =
        Environment.GetEnvironmentVariable("CEDSL_PYTHON") is { Length: > 0 } python ? python : "/usr/bin/python3";

    private static readonly Lazy<string> TorchVersion = new(() => CheckInstalled(Executable));

    /// <summary>torch.__version__ of <see cref="Executable"/> (throws with the install command when <c>import torch</c> fails).</summary>
    public static string Version => TorchVersion.Value;

    /// <summary>torch.__version__ of <paramref name="python"/>; throws, naming the package to install, when it cannot import torch.</summary>
    public static string CheckInstalled(string python)
    {
        PythonResult result;
        try
        {
            result = RunUnchecked(python, ["-c", "import torch; print(torch.__version__)"], TimeSpan.FromMinutes(2));
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw Missing(python, $"{python} cannot be started ({e.Message})", e);
        }
        if (result.ExitCode != 0)
            throw Missing(python, result.Describe(), null);
        return result.Output.Trim();
    }

    private static InvalidOperationException Missing(string python, string problem, Exception? inner) => new(
        $"PyTorch for Python is not installed: {problem}\nThe Python tests need Debian's python3-torch at {python}; " +
        $"install it as root with `{InstallCommand}` (building tests/CeDsl.Python.Tests as root does it).", inner);

    public static string ScriptsDirectory => Path.Combine(AppContext.BaseDirectory, "Scripts");

    /// <summary>Runs <c>Scripts/<paramref name="script"/></c> with <paramref name="arguments"/>; throws with its output unless it exits with 0.</summary>
    public static PythonResult RunScript(string script, TimeSpan timeout, params string[] arguments)
    {
        _ = Version;
        return Checked(RunUnchecked(Executable, [Path.Combine(ScriptsDirectory, script), .. arguments], timeout));
    }

    /// <summary>
    /// Runs <c>Scripts/<paramref name="script"/></c> as <paramref name="processes"/> ranks under torchrun on this machine,
    /// rendezvous and gloo on the loopback interface only; throws with the output unless every rank exits with 0.
    /// </summary>
    /// <remarks>
    /// <c>--redirects 1 --tee 1</c> works around Debian's PyTorch 1.13 on Python 3.11, whose torchrun fails with
    /// "'NoneType' object has no attribute 'get'" for the default "0" (Python 3.11 no longer iterates the zero
    /// flag Std.NONE); with it each rank's standard output is also kept in a log file.
    /// </remarks>
    public static PythonResult RunTorchrun(int processes, string script, TimeSpan timeout, params string[] arguments)
    {
        _ = Version;
        string[] launcher =
        [
            "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", processes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--master_addr", "127.0.0.1", "--master_port", FreeLoopbackPort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--redirects", "1", "--tee", "1",
        ];
        return Checked(RunUnchecked(Executable, [.. launcher, Path.Combine(ScriptsDirectory, script), .. arguments], timeout,
            new Dictionary<string, string> { ["GLOO_SOCKET_IFNAME"] = "lo" }));
    }

    private static int FreeLoopbackPort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static PythonResult Checked(PythonResult result) =>
        result.ExitCode == 0 ? result : throw new InvalidOperationException(result.Describe());

    private static PythonResult RunUnchecked(string python, IReadOnlyList<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        start.Environment["PYTHONPATH"] = Path.Combine(AppContext.BaseDirectory, "python");
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        // Two cores are shared by everything: one thread per Python process.
        start.Environment["OMP_NUM_THREADS"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;

        var output = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        string commandLine = python + " " + string.Join(' ', arguments);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output)
                throw new TimeoutException($"`{commandLine}` did not finish within {timeout.TotalSeconds:F0} s:\n{output}");
        }
        process.WaitForExit();
        lock (output)
            return new PythonResult(commandLine, process.ExitCode, output.ToString(), watch.Elapsed);
    }
}
