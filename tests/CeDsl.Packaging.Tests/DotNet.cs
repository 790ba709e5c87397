using System.Diagnostics;
using System.Text;

namespace CeDsl.Packaging.Tests;

/// <summary>The outcome of one <c>dotnet</c> command: its exit code and everything it printed.</summary>
public sealed record CommandResult(string CommandLine, string WorkingDirectory, int ExitCode, string Output, TimeSpan Duration)
{
    /// <summary>The command, its exit code and its output (the last 20,000 characters), for a failure message.</summary>
    public string Describe()
    {
        const int Tail = 20_000;
        string output = Output.Length > Tail ? "[...]\n" + Output[^Tail..] : Output;
        return $"`{CommandLine}` in {WorkingDirectory} exited with {ExitCode} after {Duration.TotalSeconds:F0} s:\n{output}";
    }

    /// <summary>Throws with the whole description unless the command succeeded.</summary>
    public CommandResult EnsureSuccess()
    {
        if (ExitCode != 0)
            throw new InvalidOperationException(Describe());
        return this;
    }
}

/// <summary>Runs the <c>dotnet</c> that runs the tests as a child process.</summary>
internal static class DotNet
{
    /// <summary>
    /// Runs <c>dotnet</c> with <paramref name="arguments"/> in <paramref name="workingDirectory"/>,
    /// capturing standard output and error together; kills the process tree after <paramref name="timeout"/>.
    /// </summary>
    public static CommandResult Run(string workingDirectory, TimeSpan timeout, params string[] arguments)
    {
        var start = new ProcessStartInfo(DotNetExecutable())
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        // The test host runs under `dotnet test`, whose MSBuild variables must not steer the child build.
        foreach (string name in start.Environment.Keys.ToList())
        {
            if (name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase))
                start.Environment.Remove(name);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        // The tests read the numbers the sample prints.
        start.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";

        var output = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string commandLine = "dotnet " + string.Join(' ', arguments);
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output)
                throw new TimeoutException($"`{commandLine}` in {workingDirectory} did not finish within {timeout.TotalMinutes:F0} minutes:\n{output}");
        }
        process.WaitForExit(); // drains the asynchronous readers
        lock (output)
            return new CommandResult(commandLine, workingDirectory, process.ExitCode, output.ToString(), watch.Elapsed);
    }

    private static string DotNetExecutable() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}
