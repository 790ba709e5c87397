using System.CommandLine;
using System.Globalization;

namespace CeDsl.Cli;

/// <summary>The <c>--input CxHxW</c> option.</summary>
internal static class InputShapes
{
    public static Option<long[]?> Option(string description) => new("--input")
    {
        Description = description,
        HelpName = "CxHxW",
        CustomParser = result =>
        {
            string text = result.Tokens.Single().Value;
            if (TryParse(text, out var shape))
                return shape;
            result.AddError($"--input must be CxHxW with positive sizes, e.g. 1x32x32; got '{text}'.");
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

    public static string Format(IEnumerable<long> shape) => string.Join("x", shape);
}
