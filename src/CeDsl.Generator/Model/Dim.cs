using System.Collections.Generic;
using System.Globalization;

namespace CeDsl.Generator.Model;

/// <summary>A constructor parameter (or the input's spatial size) that a block's or network's values depend on.</summary>
internal enum Parameter
{
    /// <summary>The input's channels (a block's <c>inChannels</c>; a network's when its constructor takes them).</summary>
    InChannels,

    /// <summary>A block's width, the stage's Out.</summary>
    Width,

    /// <summary>A block's stride.</summary>
    Stride,

    /// <summary>A block's input height (known per stage, never a constructor parameter).</summary>
    InputHeight,

    /// <summary>A block's input width (known per stage, never a constructor parameter).</summary>
    InputWidth,

    /// <summary>The group size of the CE the paper's rule puts in a block.</summary>
    CEGroupSize,

    /// <summary>The reduction of the CE the paper's rule puts in a block.</summary>
    CEReduction,

    /// <summary>A network's classes.</summary>
    Classes,
}

/// <summary>
/// An integer value of the plan (a size, a stride, a group count...) as an expression over the
/// <see cref="Parameter"/>s: a constant inside networks, an expression in blocks, evaluated per stage
/// for the diagnostics and written as C# by the emitter. Compared structurally; constant operations fold.
/// </summary>
internal abstract record Dim
{
    public static Dim Of(long value) => new ConstDim(value);

    public static Dim Var(Parameter parameter) => new ParameterDim(parameter);

    public bool IsConstant => this is ConstDim;

    public long? Constant => this is ConstDim c ? c.Value : null;

    public static Dim operator +(Dim a, Dim b) => Binary('+', a, b);

    public static Dim operator -(Dim a, Dim b) => Binary('-', a, b);

    public static Dim operator *(Dim a, Dim b) => Binary('*', a, b);

    /// <summary>Floor division (sizes are non-negative where it is used).</summary>
    public static Dim operator /(Dim a, Dim b) => Binary('/', a, b);

    public static implicit operator Dim(long value) => Of(value);

    /// <summary><paramref name="whenTrue"/> where <paramref name="condition"/> holds, else <paramref name="whenFalse"/>.</summary>
    public static Dim If(Condition condition, Dim whenTrue, Dim whenFalse) =>
        condition.Known is { } known ? (known ? whenTrue : whenFalse) : whenTrue == whenFalse ? whenTrue : new ConditionalDim(condition, whenTrue, whenFalse);

    /// <summary>The group count of a grouped convolution with a BD folded into it (<c>InferenceFolding.DecorrelatedGroups</c>, evaluated at run time).</summary>
    public static Dim DecorrelatedGroups(Dim outChannels, Dim groups, Dim groupSize) => new DecorrelatedGroupsDim(outChannels, groups, groupSize);

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
            // (x * k) / k = x keeps expressions short (ShuffleNet's halves of doubled widths).
            case '/' when a is BinaryDim { Op: '*', Right: ConstDim k } m && b is ConstDim d && k.Value == d.Value: return m.Left;
        }
        return new BinaryDim(op, a, b);
    }

    internal static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
    }

    /// <summary>The value for the given parameters, or null when a parameter is missing, a division is by zero or the value is only known at run time.</summary>
    public abstract long? Evaluate(IReadOnlyDictionary<Parameter, long> environment);

    /// <summary>Whether the expression uses <paramref name="parameter"/>.</summary>
    public abstract bool Uses(Parameter parameter);

    /// <summary>The expression in the notation of the block's constructor (for messages and documentation).</summary>
    public override string ToString() => Display.Of(this);
}

internal sealed record ConstDim(long Value) : Dim
{
    public override long? Evaluate(IReadOnlyDictionary<Parameter, long> environment) => Value;

    public override bool Uses(Parameter parameter) => false;

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

internal sealed record ParameterDim(Parameter Parameter) : Dim
{
    public override long? Evaluate(IReadOnlyDictionary<Parameter, long> environment) =>
        environment.TryGetValue(Parameter, out var value) ? value : null;

    public override bool Uses(Parameter parameter) => Parameter == parameter;

    public override string ToString() => Display.Of(this);
}

internal sealed record BinaryDim(char Op, Dim Left, Dim Right) : Dim
{
    public int Precedence => Op is '+' or '-' ? 1 : 2;

    public override long? Evaluate(IReadOnlyDictionary<Parameter, long> environment)
    {
        var a = Left.Evaluate(environment);
        var b = Right.Evaluate(environment);
        if (a is null || b is null) return null;
        switch (Op)
        {
            case '+': return a + b;
            case '-': return a - b;
            case '*': return a * b;
            default: return b == 0 ? null : FloorDiv(a.Value, b.Value);
        }
    }

    public override bool Uses(Parameter parameter) => Left.Uses(parameter) || Right.Uses(parameter);

    public override string ToString() => Display.Of(this);
}

internal sealed record ConditionalDim(Condition Condition, Dim WhenTrue, Dim WhenFalse) : Dim
{
    public override long? Evaluate(IReadOnlyDictionary<Parameter, long> environment) => null;

    public override bool Uses(Parameter parameter) => Condition.Uses(parameter) || WhenTrue.Uses(parameter) || WhenFalse.Uses(parameter);

    public override string ToString() => Display.Of(this);
}

internal sealed record DecorrelatedGroupsDim(Dim OutChannels, Dim Groups, Dim GroupSize) : Dim
{
    public override long? Evaluate(IReadOnlyDictionary<Parameter, long> environment) => null;

    public override bool Uses(Parameter parameter) => OutChannels.Uses(parameter) || Groups.Uses(parameter) || GroupSize.Uses(parameter);

    public override string ToString() => Display.Of(this);
}
