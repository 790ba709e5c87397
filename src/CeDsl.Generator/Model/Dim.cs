using System.Collections.Generic;
using System.Globalization;

namespace CeDsl.Generator.Model;

/// <summary>
/// A size (channels, height or width) as an integer expression over the block's constructor
/// parameters (<c>inChannels</c>, <c>width</c>, <c>stride</c>) and the input's spatial size
/// (<c>h</c>, <c>w</c>). Inside networks every size is a constant; blocks keep the expression,
/// which becomes C# in the generated constructor and is evaluated per stage for the diagnostics.
/// </summary>
internal abstract record Dim
{
    public const string InChannels = "inChannels";
    public const string Width = "width";
    public const string Stride = "stride";
    public const string Height = "h";
    public const string WidthSpatial = "w";

    public static Dim Of(long value) => new ConstDim(value);

    public static Dim Var(string name) => new VarDim(name);

    public bool IsConstant => this is ConstDim;

    public long? Constant => this is ConstDim c ? c.Value : null;

    public static Dim operator +(Dim a, Dim b) => Binary('+', a, b);

    public static Dim operator -(Dim a, Dim b) => Binary('-', a, b);

    public static Dim operator *(Dim a, Dim b) => Binary('*', a, b);

    /// <summary>Floor division (sizes are non-negative where it is used).</summary>
    public static Dim operator /(Dim a, Dim b) => Binary('/', a, b);

    public static implicit operator Dim(long value) => Of(value);

    private static Dim Binary(char op, Dim a, Dim b)
    {
        if (a is ConstDim x && b is ConstDim y)
        {
            switch (op)
            {
                case '+': return Of(x.Value + y.Value);
                case '-': return Of(x.Value - y.Value);
                case '*': return Of(x.Value * y.Value);
                case '/' when y.Value != 0: return Of(FloorDiv(x.Value, y.Value));
            }
        }
        switch (op)
        {
            case '+' when b is ConstDim { Value: 0 }: return a;
            case '+' when a is ConstDim { Value: 0 }: return b;
            case '-' when b is ConstDim { Value: 0 }: return a;
            case '*' when b is ConstDim { Value: 1 }: return a;
            case '*' when a is ConstDim { Value: 1 }: return b;
            case '*' when a is ConstDim { Value: 0 } || b is ConstDim { Value: 0 }: return Of(0);
            case '/' when b is ConstDim { Value: 1 }: return a;
            case '-' when a == b: return Of(0);
            case '+' when a == b: return a * Of(2);
            // (x * k) / k = x keeps rendered expressions short (ShuffleNet's halves of doubled widths).
            case '/' when a is BinaryDim { Op: '*', Right: ConstDim k } m && b is ConstDim d && k.Value == d.Value: return m.Left;
        }
        return new BinaryDim(op, a, b);
    }

    private static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
    }

    /// <summary>The value for the given parameters, or null when a parameter is missing or a division is by zero.</summary>
    public abstract long? Evaluate(IReadOnlyDictionary<string, long> environment);

    /// <summary>The expression as C#.</summary>
    public string ToCSharp() => Render(0);

    internal abstract string Render(int parentPrecedence);

    /// <summary>Whether the expression uses any of the given variables.</summary>
    public abstract bool Uses(string variable);
}

internal sealed record ConstDim(long Value) : Dim
{
    public override long? Evaluate(IReadOnlyDictionary<string, long> environment) => Value;

    internal override string Render(int parentPrecedence) => Value.ToString(CultureInfo.InvariantCulture);

    public override bool Uses(string variable) => false;

    public override string ToString() => Render(0);
}

internal sealed record VarDim(string Name) : Dim
{
    public override long? Evaluate(IReadOnlyDictionary<string, long> environment) =>
        environment.TryGetValue(Name, out var value) ? value : null;

    internal override string Render(int parentPrecedence) => Name;

    public override bool Uses(string variable) => Name == variable;

    public override string ToString() => Name;
}

internal sealed record BinaryDim(char Op, Dim Left, Dim Right) : Dim
{
    private int Precedence => Op is '+' or '-' ? 1 : 2;

    public override long? Evaluate(IReadOnlyDictionary<string, long> environment)
    {
        var a = Left.Evaluate(environment);
        var b = Right.Evaluate(environment);
        if (a is null || b is null) return null;
        switch (Op)
        {
            case '+': return a + b;
            case '-': return a - b;
            case '*': return a * b;
            default:
                if (b == 0) return null;
                long q = a.Value / b.Value;
                return (a.Value % b.Value != 0 && (a.Value < 0) != (b.Value < 0)) ? q - 1 : q;
        }
    }

    internal override string Render(int parentPrecedence)
    {
        // Left-associative: the right operand of - and / needs parentheses at equal precedence.
        var text = Left.Render(Precedence) + " " + Op + " " + Right.Render(Precedence + 1);
        return Precedence < parentPrecedence ? "(" + text + ")" : text;
    }

    public override bool Uses(string variable) => Left.Uses(variable) || Right.Uses(variable);

    public override string ToString() => Render(0);
}
