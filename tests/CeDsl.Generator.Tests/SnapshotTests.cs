using System.Globalization;
using CeDsl.Generator.Tests.Infrastructure;

namespace CeDsl.Generator.Tests;

/// <summary>The generated source of representative blocks and networks, compared with approved snapshots.</summary>
public class SnapshotTests
{
    private static GeneratorRun Generate(string declarations)
    {
        var run = GeneratorHarness.Run(Samples.Usings + declarations);
        Assert.Empty(run.Diagnostics);
        return run;
    }

    [Theory]
    [InlineData(nameof(Samples.BasicBlock), "Demo.BasicBlock")]
    [InlineData(nameof(Samples.CeBottleneck), "Demo.CeBottleneck")]
    [InlineData(nameof(Samples.InvertedResidual), "Demo.InvertedResidual")]
    [InlineData(nameof(Samples.ShuffleUnits), "Demo.ShuffleDownUnit")]
    [InlineData(nameof(Samples.ShuffleUnits), "Demo.ShuffleUnit")]
    [InlineData(nameof(Samples.SelectiveBottleneck), "Demo.SelectiveBottleneck")]
    public void Block(string sample, string type)
    {
        var source = (string)typeof(Samples).GetField(sample)!.GetValue(null)!;
        Snapshot.Match(Generate(source).Source(type + ".g.cs"), type);
    }

    [Fact]
    public void CifarResNetWithPaperPlacement() =>
        Snapshot.Match(Generate(Samples.BasicBlock + Samples.CifarResNet).Source("Demo.CifarResNet.g.cs"), "Demo.CifarResNet");

    [Fact]
    public void VggWithCeBetweenEveryNormAndReLU() =>
        Snapshot.Match(Generate(Samples.SmallVgg).Source("Demo.SmallVgg.g.cs"), "Demo.SmallVgg");

    [Fact]
    public void OutputDoesNotDependOnTheCurrentCulture()
    {
        var invariant = Generate(Samples.SmallVgg).Source("Demo.SmallVgg.g.cs");
        var commaCulture = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        commaCulture.NumberFormat.NumberDecimalSeparator = ",";
        commaCulture.NumberFormat.NegativeSign = "\u2212";
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = commaCulture;
            Assert.Equal("0,5", 0.5.ToString());
            var source = Generate(Samples.SmallVgg.Replace("[Dropout(0.5)]", "[Dropout(0.5)] [Norm(Kind.BN, Eps = 1e-3, Momentum = 0.01)]")).Source("Demo.SmallVgg.g.cs");
            Assert.Contains("nn.Dropout(0.5)", source);
            Assert.Contains("std: 0.01", source);
            Assert.Contains("eps: 0.001, momentum: 0.01", source);
            Assert.Equal(invariant, Generate(Samples.SmallVgg).Source("Demo.SmallVgg.g.cs"));
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }
}
