using System.Globalization;

namespace CeDsl.Generator.Model;

/// <summary>The names of the <see cref="Parameter"/>s: those of the generated constructors' parameters.</summary>
internal static class ParameterNames
{
    public static string Of(Parameter parameter) => parameter switch
    {
        Parameter.InChannels => "inChannels",
        Parameter.Width => "width",
        Parameter.Stride => "stride",
        Parameter.InputHeight => "inputHeight",
        Parameter.InputWidth => "inputWidth",
        Parameter.CEGroupSize => "ceGroupSize",
        Parameter.CEReduction => "ceReduction",
        _ => "classes",
    };

    /// <summary>The parameter of the placement conditions.</summary>
    public const string Placement = "placement";
}

/// <summary>Sizes in the notation of a block's constructor, for diagnostics (the emitter writes the C#).</summary>
internal static class Display
{
    public static string Of(Dim dim) => Render(dim, 0);

    private static string Render(Dim dim, int parentPrecedence)
    {
        switch (dim)
        {
            case ConstDim c:
                return c.Value.ToString(CultureInfo.InvariantCulture);
            case ParameterDim p:
                return ParameterNames.Of(p.Parameter);
            case BinaryDim b:
                var text = Render(b.Left, b.Precedence) + " " + b.Op + " " + Render(b.Right, b.Precedence + 1);
                return b.Precedence < parentPrecedence ? "(" + text + ")" : text;
            default:
                // Conditional and run-time sizes exist only in folded plans, which no diagnostic names.
                return "(" + dim.GetType().Name + ")";
        }
    }
}
