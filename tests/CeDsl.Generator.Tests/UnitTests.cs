using CeDsl.Generator.Emit;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Tests;

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
        var width = Dim.Var(Dim.Width);
        var input = Dim.Var(Dim.InChannels);
        Assert.Equal("width * 4", (width * 4).ToCSharp());
        Assert.Equal("width", (width * 1 + 0).ToCSharp());
        Assert.Equal("width * 2", (width + width).ToCSharp());
        Assert.Equal("inChannels - (width + 1)", (input - (width + 1)).ToCSharp());
        Assert.Equal("inChannels * (width / 2)", (input * (width / 2)).ToCSharp());
        Assert.Equal("inChannels / 2 + width", (input / 2 + width).ToCSharp());
        Assert.Equal(Dim.Of(28), (Dim.Of(56) + 2 * 1 - 3) / 2 + 1);
        var env = new Dictionary<string, long> { [Dim.Width] = 64, [Dim.InChannels] = 24 };
        Assert.Equal(24 - 65, (input - (width + 1)).Evaluate(env));
        Assert.Equal(-2, (Dim.Of(-3) / 2).Constant); // floor, as the output-size formula needs for too-small inputs
        Assert.Null((input / Dim.Var(Dim.Stride)).Evaluate(env));
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
