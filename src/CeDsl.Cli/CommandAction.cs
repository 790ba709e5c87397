using System.CommandLine;
using System.Runtime.InteropServices;
using CeDsl.IO;
using CeDsl.Layers;
using CeDsl.Training;

namespace CeDsl.Cli;

/// <summary>A problem the user can fix (an argument, a file, a combination); reported as one line, exit code 1.</summary>
internal sealed class UserException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Where a command writes, whether a person is watching (live progress) or the output is redirected, and the signals that stop it.</summary>
/// <param name="Output">Results and progress.</param>
/// <param name="Error">Errors and notes.</param>
/// <param name="Interruption">SIGINT (Ctrl+C) and SIGTERM, for the commands that stop cleanly.</param>
internal sealed record CommandOutput(TextWriter Output, TextWriter Error, Interruption Interruption)
{
    /// <summary>True when the output is the console and the console is a terminal.</summary>
    public bool IsInteractive => ReferenceEquals(Output, Console.Out) && !Console.IsOutputRedirected;
}

/// <summary>
/// Runs a command's action so that every failure prints one line on stderr and exits with 1: the
/// errors a user can fix (missing or damaged files, checkpoints of another network, unknown model
/// names, a diverged run) as <c>cedsl &lt;command&gt;: error: ...</c>, anything else (a bug) as an
/// internal error whose details go to a file. Signals end a command with 130 (SIGINT) or 143 (SIGTERM).
/// </summary>
internal static class CommandAction
{
    public const int UserError = 1;

    /// <summary>The command's name as the user typed it, e.g. "cedsl train" or "cedsl plot lines".</summary>
    public static string NameOf(Command command) => command is RootCommand
        ? "cedsl"
        : $"{(command.Parents.OfType<Command>().FirstOrDefault() is { } parent ? NameOf(parent) : "cedsl")} {command.Name}";

    /// <summary>
    /// Sets <paramref name="command"/>'s action. With <paramref name="stopsCleanly"/> the command
    /// itself watches <see cref="CommandOutput.Interruption"/> and returns its exit code; otherwise a
    /// signal ends the process at once (after a note), which is safe because commands write files atomically.
    /// </summary>
    public static void Set(Command command, Func<ParseResult, CommandOutput, int> run, bool stopsCleanly = false) =>
        command.SetAction(parse =>
        {
            var error = parse.InvocationConfiguration.Error;
            string name = NameOf(command);
            using var interruption = new Interruption(signal =>
            {
                if (!stopsCleanly)
                    error.WriteLine($"{name}: interrupted by {Interruption.Describe(signal)}");
                return stopsCleanly;
            });
            var output = new CommandOutput(parse.InvocationConfiguration.Output, error, interruption);
            void Note(string message) => error.WriteLine($"{name}: note: {message}");
            OneDnnGuard.OneDnnTurnedOff += Note;
            try
            {
                return run(parse, output);
            }
            catch (Exception e)
            {
                error.WriteLine(Describe(name, e));
                return UserError;
            }
            finally
            {
                OneDnnGuard.OneDnnTurnedOff -= Note;
            }
        });

    /// <summary>The one line that reports <paramref name="failure"/> of command <paramref name="name"/>.</summary>
    public static string Describe(string name, Exception failure)
    {
        if (IsUserError(failure))
            return $"{name}: error: {Flatten(failure.Message)}";
        if (IsOutOfMemory(failure))
            return $"{name}: error: not enough memory ({OneLine(failure.Message)}); try a smaller --batch or --input";
        string details = WriteDetails(name, failure);
        return $"{name}: internal error: {failure.GetType().Name}: {OneLine(failure.Message)} (a bug in cedsl; {details})";
    }

    private static bool IsUserError(Exception e) => e is UserException or InvalidDataException or IOException
        or UnauthorizedAccessException or CheckpointMismatchException or StateDictMismatchException or TrainingDivergedException;

    /// <summary>libtorch reports a failed allocation as "DefaultCPUAllocator: not enough memory: you tried to allocate ...".</summary>
    private static bool IsOutOfMemory(Exception e) => e is OutOfMemoryException
        || e is ExternalException && e.Message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A message of several lines as one: a strict load's message lists keys under headings
    /// ("unexpected in the file (2):" then one indented key per line), which become "heading: a, b".
    /// </summary>
    private static string Flatten(string message)
    {
        var line = new System.Text.StringBuilder();
        string previous = "";
        foreach (string part in message.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string text = part.Trim();
            if (line.Length > 0)
                line.Append(char.IsWhiteSpace(part[0]) ? (previous.EndsWith(':') ? " " : ", ") : (previous.EndsWith('.') ? " " : "; "));
            line.Append(text);
            previous = text;
        }
        return line.ToString();
    }

    /// <summary>The first line of a message (libtorch appends its native stack to the first).</summary>
    private static string OneLine(string message) =>
        message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";

    /// <summary>Writes the whole exception to a file in the temporary directory and says where, for a bug report.</summary>
    private static string WriteDetails(string name, Exception failure)
    {
        try
        {
            string path = Path.Combine(Path.GetTempPath(), $"cedsl-error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
            File.WriteAllText(path, $"{name} {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}\n{failure}\n");
            return $"please report it with {path}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "please report it";
        }
    }
}

/// <summary>
/// SIGINT (Ctrl+C) and SIGTERM (kill, container runtimes, batch schedulers) while a command runs:
/// the first one is recorded and cancels <see cref="Token"/>; whether the process then ends at once
/// is the handler's choice.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _signal;

    /// <param name="handle">Called on each signal; returns true to keep the process running (the command stops cleanly).</param>
    public Interruption(Func<PosixSignal, bool> handle)
    {
        _registrations = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM }.Select(signal => PosixSignalRegistration.Create(signal, context =>
        {
            Interlocked.CompareExchange(ref _signal, (int)context.Signal, 0);
            context.Cancel = handle(context.Signal);
            try
            {
                _source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The command has just finished.
            }
        }))];
    }

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>The first signal received, or null.</summary>
    public PosixSignal? Signal => _signal == 0 ? null : (PosixSignal)_signal;

    /// <summary>The shell's code for a process ended by the signal: 130 for SIGINT, 143 for SIGTERM.</summary>
    public int ExitCode => Signal == PosixSignal.SIGTERM ? 143 : 130;

    /// <summary>"SIGINT (Ctrl+C)" or "SIGTERM".</summary>
    public static string Describe(PosixSignal signal) => signal == PosixSignal.SIGINT ? "SIGINT (Ctrl+C)" : signal.ToString();

    public void Dispose()
    {
        foreach (var registration in _registrations)
            registration.Dispose();
        _source.Dispose();
    }
}
