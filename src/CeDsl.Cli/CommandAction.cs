using System.CommandLine;
using CeDsl.IO;
using CeDsl.Layers;
using CeDsl.Training;

namespace CeDsl.Cli;

/// <summary>A problem the user can fix (an argument, a file, a combination); reported as one line, exit code 1.</summary>
internal sealed class UserException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Where a command writes, and whether a person is watching (live progress) or the output is redirected.</summary>
/// <param name="Output">Results and progress.</param>
/// <param name="Error">Errors and notes.</param>
internal sealed record CommandOutput(TextWriter Output, TextWriter Error)
{
    /// <summary>True when the output is the console and the console is a terminal.</summary>
    public bool IsInteractive => ReferenceEquals(Output, Console.Out) && !Console.IsOutputRedirected;
}

/// <summary>
/// Runs a command's action so that the errors a user can fix (missing or damaged files, checkpoints
/// of another network, unknown model names) print one line on stderr and exit with 1, instead of a
/// stack trace; anything else is a bug and keeps its stack trace.
/// </summary>
internal static class CommandAction
{
    public const int UserError = 1;

    /// <summary>The exit code after Ctrl+C (128 + SIGINT).</summary>
    public const int Interrupted = 130;

    public static void Set(Command command, Func<ParseResult, CommandOutput, int> run) =>
        command.SetAction(parse =>
        {
            var output = new CommandOutput(parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error);
            void Note(string message) => output.Error.WriteLine($"cedsl {command.Name}: note: {message}");
            OneDnnGuard.OneDnnTurnedOff += Note;
            try
            {
                return run(parse, output);
            }
            catch (Exception e) when (IsUserError(e))
            {
                output.Error.WriteLine($"cedsl {command.Name}: error: {e.Message}");
                return UserError;
            }
            finally
            {
                OneDnnGuard.OneDnnTurnedOff -= Note;
            }
        });

    private static bool IsUserError(Exception e) => e is UserException or InvalidDataException or IOException
        or UnauthorizedAccessException or CheckpointMismatchException or StateDictMismatchException;
}
