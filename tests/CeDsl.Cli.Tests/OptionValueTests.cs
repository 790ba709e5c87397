using System.CommandLine;

namespace CeDsl.Cli.Tests;

/// <summary>
/// A value an option cannot take (not a number, out of its type's range, out of the option's range)
/// is one line on stderr naming the option, with exit code 1, for every option of every command.
/// </summary>
public sealed class OptionValueTests
{
    [Theory]
    [InlineData("train --epochs abc", "--epochs must be a whole number; got 'abc'.")]
    [InlineData("train --epochs 99999999999", "--epochs must be at most 2147483647; got 99999999999.")]
    [InlineData("train --seed 2147483648", "--seed must be at most 2147483647; got 2147483648.")]
    [InlineData("train --lr 0.1,5", "--lr must be a finite number such as 0.1 or 1e-4; got '0.1,5'.")]
    [InlineData("train --lr Infinity", "--lr must be a finite number such as 0.1 or 1e-4; got 'Infinity'.")]
    [InlineData("train --lr 1e300", "--lr must be positive and at most 3.4e38 (the networks' parameters are float32); got 1e300.")]
    [InlineData("train --batch x", "--batch must be a whole number; got 'x'.")]
    [InlineData("train --limit-test -1", "--limit-test must be positive; got -1.")]
    [InlineData("bench --model resnet20 --iterations 99999999999", "--iterations must be at most 2147483647; got 99999999999.")]
    [InlineData("summary --model resnet20 --classes abc", "--classes must be a whole number; got 'abc'.")]
    [InlineData("summary --model resnet20 --classes 100000000", "--classes must be at most 100000; got 100000000.")]
    [InlineData("summary --model resnet20 --input 1x99999x99999", "--input 1x99999x99999 is too large")]
    [InlineData("analyze --checkpoint a --out b --repeats x", "--repeats must be a whole number; got 'x'.")]
    [InlineData("demo --steps 1e3", "--steps must be a whole number; got '1e3'.")]
    public void A_bad_number_is_one_line_naming_the_option_with_exit_code_1(string commandLine, string expected)
    {
        var result = CliRun.Run(commandLine.Split(' '));

        AssertOneLineError(result, commandLine.Split(' ')[0]);
        Assert.Contains(expected, result.Error);
    }

    [Fact]
    public void An_empty_path_is_refused_by_name()
    {
        var result = CliRun.Run("train", "--out", "");

        AssertOneLineError(result, "train");
        Assert.Contains("--out needs a dir name; got ''.", result.Error);
    }

    /// <summary>
    /// Every option that takes numbers, of every command, given values no such option accepts: the
    /// parser reports each (before, a validator that read the value threw, and the process aborted).
    /// </summary>
    [Fact]
    public void Every_numeric_option_of_every_command_reports_a_bad_value()
    {
        string[] integers = ["abc", "99999999999", "-99999999999", "1.5", ""];
        string[] reals = ["abc", "1e999", "-1e999", "NaN", "Infinity", "0.1,5", ""];
        var options = Cli.CreateRoot().Subcommands
            .SelectMany(c => c.Options.Select(o => (Command: c.Name, Option: o.Name, Values: ValuesNoneAccepts(o.ValueType))))
            .Where(o => o.Values is not null)
            .ToList();
        Assert.True(options.Count >= 25, string.Join(", ", options));

        foreach (var (command, option, values) in options)
        foreach (string value in values!)
        {
            var result = CliRun.Run(command, option, value);
            AssertOneLineError(result, command);
            Assert.True(result.Error.Contains(option, StringComparison.Ordinal), $"{command} {option} '{value}': {result}");
        }

        string[]? ValuesNoneAccepts(Type type) =>
            type == typeof(int) || type == typeof(int?) || type == typeof(int[]) || type == typeof(long[]) ? integers
            : type == typeof(double) || type == typeof(double?) || type == typeof(double[]) ? reals
            : null;
    }

    /// <summary>The symptom as a user saw it: the process aborted with exit code 134 and a stack trace.</summary>
    [Fact]
    public void The_cedsl_process_exits_with_1_and_one_line()
    {
        var result = CliProcess.Run("train", "--epochs", "abc");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Equal("cedsl train: error: --epochs must be a whole number; got 'abc'. (see cedsl train --help)\n", result.Error);
        Assert.Equal("", result.Output);
    }

    internal static void AssertOneLineError(CliResult result, string command)
    {
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Single(result.Error.TrimEnd('\n').Split('\n'));
        Assert.StartsWith($"cedsl {command}: error: ", result.Error);
        Assert.DoesNotContain("   at ", result.Error);
    }
}
