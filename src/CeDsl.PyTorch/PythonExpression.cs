using System.Globalization;
using System.Text;

namespace CeDsl.PyTorch;

/// <summary>
/// A Python expression that builds a module: a call with its arguments, a Sequential of modules, a literal,
/// or (in a class shared by several modules of the network) one of the class's constructor parameters.
/// </summary>
internal abstract record PythonExpression
{
    /// <summary>The expression with every literal replaced by its kind: equal for expressions that one class can build with parameters.</summary>
    public abstract string Shape { get; }
}

/// <summary>A number (long or double), bool, string or None.</summary>
internal sealed record PythonLiteral(object? Value) : PythonExpression
{
    public override string Shape => "_";

    /// <summary>How Python writes the value: <c>1e-05</c>, <c>0.1</c>, <c>1.0</c>, <c>True</c>, <c>None</c>, <c>"ce"</c>.</summary>
    public static string Format(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long or int => Convert.ToString(value, CultureInfo.InvariantCulture)!,
        double d when double.IsNaN(d) => "float(\"nan\")",
        double d when double.IsInfinity(d) => d > 0 ? "float(\"inf\")" : "-float(\"inf\")",
        double d => Real(d),
        string s => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"",
        _ => throw new ArgumentException($"No Python literal for a {value.GetType().Name}."),
    };

    private static string Real(double value)
    {
        // The shortest text that reads back as the same double, with Python's lower-case exponent and a
        // decimal point where C# would write an integer ("1" would be an int in Python).
        string text = value.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant();
        return text.Contains('.', StringComparison.Ordinal) || text.Contains('e', StringComparison.Ordinal) ? text : text + ".0";
    }
}

/// <summary>A constructor parameter of a class shared by several modules (their values differ there).</summary>
internal sealed record PythonParameter(ClassParameter Parameter) : PythonExpression
{
    public override string Shape => "_";
}

/// <summary><c>(a, b)</c>.</summary>
internal sealed record PythonTuple(IReadOnlyList<PythonExpression> Items) : PythonExpression
{
    public override string Shape => "(" + string.Join(",", Items.Select(i => i.Shape)) + ")";
}

/// <summary>
/// An argument of a call. A keyword argument with a default is left out when its value is that default
/// (<c>nn.Conv2d(16, 16, 3)</c> rather than <c>stride=1</c>): only for PyTorch's own modules, whose defaults are
/// PyTorch's documented API; cedsl_torch's layers get every argument written out.
/// </summary>
internal sealed record PythonArgument(string Name, PythonExpression Value, bool Positional = false, bool HasDefault = false, object? Default = null);

/// <summary><c>Callee(arguments)</c>: a module's constructor.</summary>
internal sealed record PythonCall(string Callee, IReadOnlyList<PythonArgument> Arguments) : PythonExpression
{
    public override string Shape => Callee + "(" + string.Join(",", Arguments.Select(a => a.Name + "=" + a.Value.Shape)) + ")";
}

/// <summary><c>BasicBlock(in_channels=64, out_channels=128)</c>: a module of a class this export writes, with its parameters' values.</summary>
internal sealed record PythonInstance(PythonClass Class, IReadOnlyList<PythonArgument> Arguments) : PythonExpression
{
    public override string Shape => "#" + Class.Id.ToString(CultureInfo.InvariantCulture) + "(" + string.Join(",", Arguments.Select(a => a.Name + "=" + a.Value.Shape)) + ")";
}

/// <summary><c>nn.Sequential</c> of named modules (keys 0, 1, ... or any others, as TorchSharp's Sequential has them).</summary>
internal sealed record PythonSequential(IReadOnlyList<(string Key, PythonExpression Module)> Entries) : PythonExpression
{
    public override string Shape => "Sequential[" + string.Join(",", Entries.Select(e => e.Key + "=" + e.Module.Shape)) + "]";

    /// <summary>Whether the keys are 0, 1, 2, ... in order, as <c>nn.Sequential(a, b, c)</c> names them.</summary>
    public bool IsNumbered => Entries.Select((e, i) => e.Key == i.ToString(CultureInfo.InvariantCulture)).All(b => b);
}

/// <summary>A constructor parameter of a generated class: the values it takes in each module the class builds.</summary>
internal sealed class ClassParameter(IReadOnlyList<object?> values, string path, string argument)
{
    /// <summary>Its value in each instance, in the order of the class's instances.</summary>
    public IReadOnlyList<object?> Values { get; } = values;

    /// <summary>The first place it is used: the submodule's path in the class (<c>downsample.0</c>) ...</summary>
    public string Path { get; } = path;

    /// <summary>... and the argument there (<c>stride</c>).</summary>
    public string Argument { get; } = argument;

    /// <summary>Every argument name it is passed as.</summary>
    public HashSet<string> Arguments { get; } = new(StringComparer.Ordinal) { argument };

    public string Name { get; set; } = argument;
}

/// <summary>
/// Turns the expressions that build one submodule in each of several modules into one expression with
/// parameters: a literal that is the same everywhere stays, one that differs becomes a constructor parameter,
/// shared by every place that has the same values in every instance (the input channels of <c>conv1</c> and
/// of <c>downsample.0</c> are one parameter).
/// </summary>
internal sealed class Unifier(int instances)
{
    private readonly Dictionary<string, ClassParameter> byValues = new(StringComparer.Ordinal);

    /// <summary>The parameters in the order of their first use.</summary>
    public List<ClassParameter> Parameters { get; } = [];

    /// <summary>The expression for all instances; every instance's expression must have the same <see cref="PythonExpression.Shape"/>.</summary>
    public PythonExpression Unify(IReadOnlyList<PythonExpression> expressions, string path, string argument)
    {
        if (expressions.Count != instances)
            throw new ArgumentException($"Expected {instances} expressions, got {expressions.Count}.", nameof(expressions));
        switch (expressions[0])
        {
            case PythonLiteral:
                var values = expressions.Select(e => ((PythonLiteral)e).Value).ToList();
                return values.All(v => Equals(v, values[0])) ? new PythonLiteral(values[0]) : new PythonParameter(ParameterFor(values, path, argument));
            case PythonTuple tuple:
                return new PythonTuple([.. tuple.Items.Select((_, i) => Unify([.. expressions.Select(e => ((PythonTuple)e).Items[i])], path, argument))]);
            case PythonCall call:
                return call with
                {
                    Arguments = [.. call.Arguments.Select((a, i) => a with { Value = Unify([.. expressions.Select(e => ((PythonCall)e).Arguments[i].Value)], path, a.Name) })],
                };
            case PythonInstance instance:
                return instance with
                {
                    Arguments = [.. instance.Arguments.Select((a, i) => a with { Value = Unify([.. expressions.Select(e => ((PythonInstance)e).Arguments[i].Value)], path, a.Name) })],
                };
            case PythonSequential sequential:
                return new PythonSequential([.. sequential.Entries.Select((entry, i) =>
                    (entry.Key, Unify([.. expressions.Select(e => ((PythonSequential)e).Entries[i].Module)], path + "." + entry.Key, argument)))]);
            default:
                throw new ArgumentException($"Cannot unify {expressions[0].GetType().Name}.", nameof(expressions));
        }
    }

    private ClassParameter ParameterFor(List<object?> values, string path, string argument)
    {
        string key = string.Join("|", values.Select(v => v?.GetType().Name + ":" + PythonLiteral.Format(v)));
        if (!byValues.TryGetValue(key, out var parameter))
        {
            byValues[key] = parameter = new ClassParameter(values, path, argument);
            Parameters.Add(parameter);
        }
        parameter.Arguments.Add(argument);
        return parameter;
    }
}

/// <summary>Writes expressions as Python source.</summary>
internal static class PythonSource
{
    public const string Indent = "    ";

    /// <summary>The expression; a Sequential spans several lines, indented from <paramref name="indent"/>.</summary>
    public static string Write(PythonExpression expression, string indent) => expression switch
    {
        PythonLiteral literal => PythonLiteral.Format(literal.Value),
        PythonParameter parameter => parameter.Parameter.Name,
        PythonTuple tuple => "(" + string.Join(", ", tuple.Items.Select(i => Write(i, indent))) + (tuple.Items.Count == 1 ? ",)" : ")"),
        PythonCall call => call.Callee + "(" + string.Join(", ", call.Arguments.Where(IsWritten).Select(a => (a.Positional ? "" : a.Name + "=") + Write(a.Value, indent))) + ")",
        PythonInstance instance => instance.Class.Name + "(" + string.Join(", ", instance.Arguments.Select(a => a.Name + "=" + Write(a.Value, indent))) + ")",
        PythonSequential sequential => WriteSequential(sequential, indent),
        _ => throw new ArgumentException($"Cannot write {expression.GetType().Name}.", nameof(expression)),
    };

    private static bool IsWritten(PythonArgument argument) =>
        argument.Positional || !argument.HasDefault || argument.Value is not PythonLiteral literal || !Equals(literal.Value, argument.Default);

    private static string WriteSequential(PythonSequential sequential, string indent)
    {
        string inner = indent + Indent;
        var text = new StringBuilder();
        if (sequential.IsNumbered)
        {
            text.Append("nn.Sequential(\n");
            foreach (var (_, module) in sequential.Entries)
                text.Append(inner).Append(Write(module, inner)).Append(",\n");
            return text.Append(indent).Append(')').ToString();
        }
        text.Append("nn.Sequential(OrderedDict([\n");
        foreach (var (key, module) in sequential.Entries)
            text.Append(inner).Append('(').Append(PythonLiteral.Format(key)).Append(", ").Append(Write(module, inner)).Append("),\n");
        return text.Append(indent).Append("]))").ToString();
    }

    /// <summary>Whether the expression uses <c>OrderedDict</c> (a Sequential with keys other than 0, 1, ...).</summary>
    public static bool UsesOrderedDict(PythonExpression expression) => expression switch
    {
        PythonSequential sequential => !sequential.IsNumbered || sequential.Entries.Any(e => UsesOrderedDict(e.Module)),
        PythonCall call => call.Arguments.Any(a => UsesOrderedDict(a.Value)),
        _ => false,
    };

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else",
        "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
        "return", "try", "while", "with", "yield",
    };

    /// <summary>Whether <paramref name="name"/> can be written as an attribute or variable name.</summary>
    public static bool IsIdentifier(string name) =>
        name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_') && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !Keywords.Contains(name);

    /// <summary><paramref name="text"/> made an identifier: other characters become underscores.</summary>
    public static string Identifier(string text)
    {
        var name = new string([.. text.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_')]);
        if (name.Length == 0 || char.IsAsciiDigit(name[0])) name = "_" + name;
        return Keywords.Contains(name) ? name + "_" : name;
    }

    /// <summary>"downsample" -&gt; "Downsample", "brc_1" -&gt; "Brc1".</summary>
    public static string Pascal(string text) =>
        string.Concat(text.Split(['_', '.', ':'], StringSplitOptions.RemoveEmptyEntries).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
}
