extern alias generator;

using generator::CeDsl.Generator.Emit;
using generator::CeDsl.Generator.Model;

namespace CeDsl.Generator.Tests;

using Placement = generator::CeDsl.Placement;

/// <summary>The generator's small building blocks.</summary>
public class UnitTests
{
    [Theory]
    [InlineData(1e-5, "1e-5")]
    [InlineData(0.5, "0.5")]
    [InlineData(1.0, "1.0")]
    [InlineData(0.01, "0.01")]
    [InlineData(1e-10, "1e-10")]
    [InlineData(2.5e20, "2.5e20")]
    public void DoubleLiterals(double value, string expected)
    {
        Assert.Equal(expected, Literals.Double(value));
        Assert.Equal(value, double.Parse(expected, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void KeywordsAreEscaped()
    {
        Assert.Equal("@in", Literals.Identifier("in"));
        Assert.Equal("conv1", Literals.Identifier("conv1"));
    }

    [Fact]
    public void SizesSimplifyAndRenderWithTheRightParentheses()
    {
        var width = Dim.Var(Parameter.Width);
        var input = Dim.Var(Parameter.InChannels);
        Assert.Equal("width * 4", Expressions.Of(width * 4));
        Assert.Equal("width", Expressions.Of(width * 1 + 0));
        Assert.Equal("width * 2", Expressions.Of(width + width));
        Assert.Equal("inChannels - (width + 1)", Expressions.Of(input - (width + 1)));
        Assert.Equal("inChannels * (width / 2)", Expressions.Of(input * (width / 2)));
        Assert.Equal("inChannels / 2 + width", Expressions.Of(input / 2 + width));
        Assert.Equal("inChannels / 2 + width", (input / 2 + width).ToString());
        Assert.Equal(Dim.Of(28), (Dim.Of(56) + 2 * 1 - 3) / 2 + 1);
        var env = new Dictionary<Parameter, long> { [Parameter.Width] = 64, [Parameter.InChannels] = 24 };
        Assert.Equal(24 - 65, (input - (width + 1)).Evaluate(env));
        Assert.Equal(-2, (Dim.Of(-3) / 2).Constant); // floor, as the output-size formula needs for too-small inputs
        Assert.Null((input / Dim.Var(Parameter.Stride)).Evaluate(env));
    }

    [Fact]
    public void ConditionsFoldToKnownValuesWhereTheSizesDecideThem()
    {
        var stride = Dim.Var(Parameter.Stride);
        var input = Dim.Var(Parameter.InChannels);
        var width = Dim.Var(Parameter.Width);
        Assert.Equal(Condition.False, Condition.NotEqual(width * 4, width * 4));
        Assert.Equal(Condition.True, Condition.Equal(Dim.Of(2) * 3, Dim.Of(6)));
        Assert.Equal(Condition.True, Condition.Any(Condition.NotEqual(Dim.Of(2), 1), Condition.NotEqual(input, width)));
        var differs = Condition.Any(Condition.NotEqual(stride, 1), Condition.NotEqual(input, width * 4));
        Assert.Null(differs.Known);
        Assert.Equal("stride != 1 || inChannels != width * 4", Expressions.Of(differs));
        Assert.Equal("stride == 1 && inChannels == width", Expressions.Of(Condition.All(Condition.Equal(stride, 1), Condition.Equal(input, width), Condition.True)));
        Assert.Equal(Condition.False, Condition.All(Condition.Equal(stride, 1), Condition.False));
        Assert.Equal("(stride != 1 || inChannels != width) && placement == Placement.Paper",
            Expressions.Of(Condition.All(Condition.Any(Condition.NotEqual(stride, 1), Condition.NotEqual(input, width)), Condition.PlacementIs(Placement.Paper))));

        var env = new Dictionary<Parameter, long> { [Parameter.Stride] = 1, [Parameter.InChannels] = 64, [Parameter.Width] = 16 };
        Assert.False(differs.Evaluate(env, null));
        Assert.True(Condition.PlacementIs(Placement.None, equal: false).Evaluate(env, Placement.Paper));
        Assert.Null(Condition.PlacementIs(Placement.Paper).Evaluate(env, null));
    }

    [Fact]
    public void AConditionalSizeRendersAsAConditionalExpression()
    {
        var groups = Dim.If(Condition.PlacementIs(Placement.None, equal: false), Dim.DecorrelatedGroups(Dim.Var(Parameter.Width), 4, 16), 4);
        Assert.Equal("placement != Placement.None ? InferenceFolding.DecorrelatedGroups(width, 4, 16) : 4", Expressions.Of(groups));
        Assert.Equal("(placement != Placement.None ? InferenceFolding.DecorrelatedGroups(width, 4, 16) : 4) * 2", Expressions.Of(groups * 2));
        Assert.Equal(Dim.Of(4), Dim.If(Condition.False, Dim.Of(2), Dim.Of(4)));
    }

    [Fact]
    public void EquatableArraysCompareByContent()
    {
        var a = new EquatableArray<string>(new[] { "x", "y" });
        var b = new EquatableArray<string>(new List<string> { "x", "y" });
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, new EquatableArray<string>(new[] { "y", "x" }));
        Assert.Equal(EquatableArray<string>.Empty, default);
    }
}
