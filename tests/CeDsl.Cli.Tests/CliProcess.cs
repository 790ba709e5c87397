using System.Diagnostics;
using System.Text;

namespace CeDsl.Cli.Tests;

/// <summary>
/// Runs the <c>cedsl</c> built beside the tests as a child process: for what must not run in the test host
/// (native code that may kill the process) and for what only the process's own stderr shows (libtorch's warnings).
/// </summary>
internal static class CliProcess
{
    public static CliResult Run(TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(DotNet())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cedsl.dll"));
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;

        var output = new StringBuilder();
        var error = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (error) error.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output)
                throw new TimeoutException($"cedsl {string.Join(' ', args)} did not finish within {timeout.TotalMinutes:F0} minutes; its output:\n{output}");
        }
        process.WaitForExit(); // drains the asynchronous readers
        lock (output) lock (error)
            return new CliResult(process.ExitCode, output.ToString(), error.ToString());
    }

    /// <summary>"exit code 136 (killed by SIGFPE)" for a child killed by a signal, "exit code 1" otherwise.</summary>
    public static string DescribeExit(int exitCode) => exitCode switch
    {
        > 128 and < 160 => $"exit code {exitCode} (killed by signal {exitCode - 128}{(exitCode - 128) switch { 6 => ", SIGABRT", 8 => ", SIGFPE", 9 => ", SIGKILL", 11 => ", SIGSEGV", _ => "" }})",
        _ => $"exit code {exitCode}",
    };

    private static string DotNet() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}
