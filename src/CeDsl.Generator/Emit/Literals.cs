using System.Globalization;
using Microsoft.CodeAnalysis.CSharp;

namespace CeDsl.Generator.Emit;

/// <summary>C# literals and identifiers, independent of the current culture.</summary>
internal static class Literals
{
    /// <summary>A double literal such as 0.5, 1e-5 or 1.0.</summary>
    public static string Double(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        int e = text.IndexOf('E');
        if (e >= 0)
        {
            // 1E-05 -> 1e-5
            var mantissa = text.Substring(0, e);
            var exponent = int.Parse(text.Substring(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            return mantissa + "e" + exponent.ToString(CultureInfo.InvariantCulture);
        }
        return text.IndexOf('.') >= 0 ? text : text + ".0";
    }

    public static string Long(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string String(string value) => SymbolDisplay.FormatLiteral(value, quote: true);

    /// <summary>A field or local name, escaped when it is a keyword.</summary>
    public static string Identifier(string name) =>
        SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None ? "@" + name : name;
}
