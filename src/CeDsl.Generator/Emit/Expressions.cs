using System.Linq;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Emit;

/// <summary>The plan's <see cref="Dim"/>s and <see cref="Condition"/>s as C# expressions over the constructor's parameters.</summary>
internal static class Expressions
{
    public static string Of(Dim dim) => Render(dim, 0);

    public static string Of(Condition condition) => Render(condition, 0);

    public static string Of(bool value) => value ? "true" : "false";

    public static string Of(Placement placement) => "Placement." + placement;

    private static string Render(Dim dim, int parentPrecedence)
    {
        switch (dim)
        {
            case ConstDim c:
                return Literals.Long(c.Value);
            case ParameterDim p:
                return ParameterNames.Of(p.Parameter);
            case BinaryDim b:
                // Left-associative: the right operand of - and / needs parentheses at equal precedence.
                var text = Render(b.Left, b.Precedence) + " " + b.Op + " " + Render(b.Right, b.Precedence + 1);
                return b.Precedence < parentPrecedence ? "(" + text + ")" : text;
            case ConditionalDim c:
                var conditional = Of(c.Condition) + " ? " + Render(c.WhenTrue, 1) + " : " + Render(c.WhenFalse, 1);
                return parentPrecedence > 0 ? "(" + conditional + ")" : conditional;
            case DecorrelatedGroupsDim d:
                return $"InferenceFolding.DecorrelatedGroups({Of(d.OutChannels)}, {Of(d.Groups)}, {Of(d.GroupSize)})";
            default:
                throw new System.InvalidOperationException("no C# for " + dim.GetType().Name);
        }
    }

    private static string Render(Condition condition, int parentPrecedence)
    {
        switch (condition)
        {
            case KnownCondition k:
                return Of(k.Value);
            case Comparison c:
                return Of(c.Left) + (c.IsEqual ? " == " : " != ") + Of(c.Right);
            case PlacementCondition p:
                return ParameterNames.Placement + (p.IsEqual ? " == " : " != ") + Of(p.Placement);
            case Junction j:
                int precedence = j.IsAnd ? 2 : 1;
                var text = string.Join(j.IsAnd ? " && " : " || ", j.Terms.Select(t => Render(t, precedence + 1)));
                return precedence < parentPrecedence ? "(" + text + ")" : text;
            default:
                throw new System.InvalidOperationException("no C# for " + condition.GetType().Name);
        }
    }
}
