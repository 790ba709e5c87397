using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;

namespace CeDsl.Cli;

/// <summary>
/// Options whose values are checked where they are parsed. System.CommandLine runs an option's
/// validators before it converts the value, and a validator that reads a value which does not
/// convert (<c>--epochs abc</c>, <c>--seed 2147483648</c>) throws instead of reporting; so every
/// number and path here is parsed and range-checked by the option's own parser, which reports a bad
/// value as a parse error naming the option. Rules that involve several options are checked in the
/// commands' actions, after every value has parsed.
/// </summary>
internal static class CliOptions
{
    /// <summary>A whole number of at least <paramref name="minimum"/> (<paramref name="belowMinimum"/> says why, e.g. "must be positive").</summary>
    public static Option<int> Integer(string name, string description, int defaultValue, int minimum, string belowMinimum,
        int maximum = int.MaxValue) => new(name)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = result => ParseInteger(result, name, minimum, belowMinimum, maximum) ?? default,
        };

    /// <summary>Like <see cref="Integer"/>, without a default: null when the option is not given.</summary>
    public static Option<int?> OptionalInteger(string name, string description, string helpName, int minimum, string belowMinimum,
        int maximum = int.MaxValue) => new(name)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = result => ParseInteger(result, name, minimum, belowMinimum, maximum),
        };

    /// <summary>A finite number for which <paramref name="isValid"/> holds (<paramref name="rule"/> says which, e.g. "must be in [0, 1)").</summary>
    public static Option<double> Real(string name, string description, double defaultValue, Func<double, bool> isValid, string rule) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result => ParseReal(result, name, isValid, rule) ?? default,
    };

    /// <summary>Like <see cref="Real"/>, without a default: null when the option is not given.</summary>
    public static Option<double?> OptionalReal(string name, string description, string helpName, Func<double, bool> isValid, string rule) => new(name)
    {
        Description = description,
        HelpName = helpName,
        CustomParser = result => ParseReal(result, name, isValid, rule),
    };

    /// <summary>One of <paramref name="choices"/>.</summary>
    public static Option<string> Choice(string name, string description, string defaultValue, params string[] choices) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        HelpName = string.Join("|", choices),
        CustomParser = result =>
        {
            string? text = Single(result);
            if (text is null)
                return defaultValue;
            if (!choices.Contains(text, StringComparer.Ordinal))
                result.AddError($"{name} must be {string.Join(" or ", choices)}; got '{text}'.");
            return text;
        },
    };

    /// <summary>A file or directory name; an empty one is refused.</summary>
    public static Option<string?> Path(string name, string description, string helpName, bool required = false) => new(name)
    {
        Description = description,
        HelpName = helpName,
        Required = required,
        CustomParser = result =>
        {
            string? text = Single(result);
            if (text is null)
                return null;
            if (string.IsNullOrWhiteSpace(text) || text.Contains('\0'))
            {
                result.AddError($"{name} needs a {helpName} name; got '{text}'.");
                return null;
            }
            return text;
        },
    };

    /// <summary>Whole numbers, one per token (<c>--milestones 3 6</c>), each of at least <paramref name="minimum"/>.</summary>
    public static Option<int[]?> Integers(string name, string description, string helpName, int minimum, string rule) => new(name)
    {
        Description = description,
        HelpName = helpName,
        AllowMultipleArgumentsPerToken = true,
        CustomParser = result =>
        {
            if (result.Tokens.Count == 0)
            {
                result.AddError($"{name} needs at least one value.");
                return null;
            }
            var values = new List<int>();
            foreach (var token in result.Tokens)
            {
                if (!int.TryParse(token.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) || value < minimum)
                {
                    result.AddError($"{name} {rule}; got '{token.Value}'.");
                    return null;
                }
                values.Add(value);
            }
            return [.. values];
        },
    };

    private static int? ParseInteger(ArgumentResult result, string name, int minimum, string belowMinimum, int maximum)
    {
        string? text = Single(result);
        if (text is null)
            return null;
        // Parsed without a size limit, so that 99999999999 is a number too large rather than "not a number".
        if (!BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            result.AddError($"{name} must be a whole number; got '{text}'.");
        else if (value < minimum)
            result.AddError($"{name} {belowMinimum}; got {text}.");
        else if (value > maximum)
            result.AddError(string.Create(CultureInfo.InvariantCulture, $"{name} must be at most {maximum}; got {text}."));
        else
            return (int)value;
        return null;
    }

    private static double? ParseReal(ArgumentResult result, string name, Func<double, bool> isValid, string rule)
    {
        string? text = Single(result);
        if (text is null)
            return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
        {
            result.AddError($"{name} must be a finite number such as 0.1 or 1e-4; got '{text}'.");
            return null;
        }
        if (!isValid(value))
        {
            result.AddError($"{name} {rule}; got {text}.");
            return null;
        }
        return value;
    }

    /// <summary>The option's one token, or null (with an error) when it has none or several.</summary>
    private static string? Single(ArgumentResult result)
    {
        if (result.Tokens.Count == 1)
            return result.Tokens[0].Value;
        string name = result.Parent is OptionResult option ? option.Option.Name : result.Argument.Name;
        result.AddError(result.Tokens.Count == 0 ? $"{name} needs a value." : $"{name} takes one value; got {result.Tokens.Count}.");
        return null;
    }
}
