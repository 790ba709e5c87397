using System.Collections.Generic;
using System.Linq;

namespace CeDsl.Generator.Model;

/// <summary>
/// A boolean value of the plan: whether a member exists (a CE only under some placements, a projection
/// only where the shape changes), whether a residual is used. Folds to <see cref="True"/> or
/// <see cref="False"/> where it can be decided from the sizes alone.
/// </summary>
internal abstract record Condition
{
    public static readonly Condition True = new KnownCondition(true);

    public static readonly Condition False = new KnownCondition(false);

    /// <summary>The value when it does not depend on any parameter.</summary>
    public bool? Known => this is KnownCondition k ? k.Value : null;

    public static Condition Equal(Dim left, Dim right) => Compare(left, equal: true, right);

    public static Condition NotEqual(Dim left, Dim right) => Compare(left, equal: false, right);

    private static Condition Compare(Dim left, bool equal, Dim right)
    {
        if (left == right) return equal ? True : False;
        if (left.Constant is { } a && right.Constant is { } b) return (a == b) == equal ? True : False;
        return new Comparison(left, equal, right);
    }

    /// <summary>The block's placement parameter equals (or, with <paramref name="equal"/> false, differs from) <paramref name="placement"/>.</summary>
    public static Condition PlacementIs(Placement placement, bool equal = true) => new PlacementCondition(placement, equal);

    /// <summary>All terms hold; known-true terms drop out, a known-false one decides.</summary>
    public static Condition All(params Condition[] terms) => Combine(terms, all: true);

    /// <summary>Any term holds; known-false terms drop out, a known-true one decides.</summary>
    public static Condition Any(params Condition[] terms) => Combine(terms, all: false);

    private static Condition Combine(IEnumerable<Condition> terms, bool all)
    {
        var open = new List<Condition>();
        foreach (var term in terms)
        {
            if (term.Known is { } known)
            {
                if (known != all) return known ? True : False;
                continue;
            }
            open.Add(term);
        }
        if (open.Count == 0) return all ? True : False;
        return open.Count == 1 ? open[0] : new Junction(all, open.ToEquatableArray());
    }

    /// <summary>The value for the given parameters and placement, or null when one is missing.</summary>
    public abstract bool? Evaluate(IReadOnlyDictionary<Parameter, long> environment, Placement? placement);

    public abstract bool Uses(Parameter parameter);
}

internal sealed record KnownCondition(bool Value) : Condition
{
    public override bool? Evaluate(IReadOnlyDictionary<Parameter, long> environment, Placement? placement) => Value;

    public override bool Uses(Parameter parameter) => false;
}

internal sealed record Comparison(Dim Left, bool IsEqual, Dim Right) : Condition
{
    public override bool? Evaluate(IReadOnlyDictionary<Parameter, long> environment, Placement? placement) =>
        Left.Evaluate(environment) is { } a && Right.Evaluate(environment) is { } b ? (a == b) == IsEqual : null;

    public override bool Uses(Parameter parameter) => Left.Uses(parameter) || Right.Uses(parameter);
}

internal sealed record PlacementCondition(Placement Placement, bool IsEqual) : Condition
{
    public override bool? Evaluate(IReadOnlyDictionary<Parameter, long> environment, Placement? placement) =>
        placement is { } value ? (value == Placement) == IsEqual : null;

    public override bool Uses(Parameter parameter) => false;
}

/// <summary>An "and" (<see cref="IsAnd"/>) or an "or" of two or more undecided terms.</summary>
internal sealed record Junction(bool IsAnd, EquatableArray<Condition> Terms) : Condition
{
    public override bool? Evaluate(IReadOnlyDictionary<Parameter, long> environment, Placement? placement)
    {
        bool undecided = false;
        foreach (var term in Terms)
        {
            var value = term.Evaluate(environment, placement);
            if (value is null) undecided = true;
            else if (value != IsAnd) return value;
        }
        return undecided ? null : IsAnd;
    }

    public override bool Uses(Parameter parameter) => Terms.Any(t => t.Uses(parameter));
}
