using System.Globalization;

namespace CeDsl.Cli;

/// <summary>Numbers as the commands print them: invariant culture, percentages without a space.</summary>
internal static class Formatting
{
    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>0.8765 as "87.65%"; null as "n/a".</summary>
    public static string Percent(double? fraction, int decimals = 2) =>
        fraction is { } value ? (100 * value).ToString("F" + decimals, CultureInfo.InvariantCulture) + "%" : "n/a";
}
