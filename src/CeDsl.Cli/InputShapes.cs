using System.CommandLine;
using System.Globalization;

namespace CeDsl.Cli;

/// <summary>The <c>--input CxHxW</c> option.</summary>
internal static class InputShapes
{
    /// <summary>
    /// The most values an input image may have: 4x1024x1024 (a network's activations are many times
    /// its input, and summary and bench run the network on two or more such images).
    /// </summary>
    public const long MaxValues = 1 << 22;

    public static Option<long[]?> Option(string description) => new("--input")
    {
        Description = description,
        HelpName = "CxHxW",
        CustomParser = result =>
        {
            string text = result.Tokens.Single().Value;
            if (!TryParse(text, out var shape))
                result.AddError($"--input must be CxHxW with positive sizes, e.g. 1x32x32; got '{text}'.");
            else if (!IsWithinLimit(shape))
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"--input {text} is too large: an image may have at most {MaxValues:N0} values (e.g. 4x1024x1024)."));
            else
                return shape;
            return null;
        },
    };

    public static bool TryParse(string text, out long[] shape)
    {
        var parts = text.Split('x', 'X');
        shape = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]) || shape[i] <= 0)
                return false;
        }
        return parts.Length == 3;
    }

    private static bool IsWithinLimit(long[] shape)
    {
        long values = 1;
        foreach (long size in shape)
        {
            if (size > MaxValues || (values *= size) > MaxValues)
                return false;
        }
        return true;
    }

    public static string Format(IEnumerable<long> shape) => string.Join("x", shape);
}
