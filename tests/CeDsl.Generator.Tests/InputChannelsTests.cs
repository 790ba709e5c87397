using CeDsl.Generator.Tests.Infrastructure;

namespace CeDsl.Generator.Tests;

/// <summary>A network's constructor takes inChannels when only convolutions read the input's channels.</summary>
public class InputChannelsTests
{
    [Fact]
    public void AConvolutionOnTheInputTakesTheConstructorsInChannels()
    {
        var source = GeneratorHarness.GenerateClean("""
            [Network(Input = "3x16x16", Classes = 10)]
            [Conv(3, Out = 8)] [Norm] [ReLU] [Conv(3, Out = 8)]
            public partial class Net;
            """, "Net");
        Assert.Contains("public Net(long classes = 10, long inChannels = 3, Device? device = null, ScalarType? dtype = null)", source);
        Assert.Contains("conv1 = nn.Conv2d(inChannels, 8, 3,", source);
        Assert.Contains("conv2 = nn.Conv2d(8, 8, 3,", source);
    }

    [Fact]
    public void EveryBranchReadingTheInputTakesInChannels()
    {
        var source = GeneratorHarness.GenerateClean("""
            [Network(Input = "3x16x16", Classes = 10)]
            [Branch("a")] [Conv(1, Out = 4)] [Branch("b")] [Conv(3, Out = 4)] [Concat]
            public partial class Net;
            """, "Net");
        Assert.Contains("long inChannels = 3", source);
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(source, @"nn\.Conv2d\(inChannels, 4,").Count);
    }

    [Theory]
    [InlineData("[Norm] [Conv(3, Out = 8)]")]
    [InlineData("[MaxPool(2)] [Conv(3, Out = 8)]")]
    [InlineData("[Conv(3, Depthwise = true)] [Conv(1, Out = 8)]")]
    [InlineData("[Conv(3, Out = 6, Groups = 2)]")]
    [InlineData("[Conv(3, Out = 8, In = 4)]")]
    [InlineData("[Split] [Conv(1, Out = 2)] [Concat] [Conv(1, Out = 8)]")]
    public void ALayerThatDependsOnTheDeclaredChannelsKeepsThemFixed(string layers)
    {
        var source = GeneratorHarness.GenerateClean($$"""
            [Network(Input = "4x16x16", Classes = 10)]
            {{layers}}
            public partial class Net;
            """, "Net");
        Assert.DoesNotContain("inChannels", source);
        Assert.Contains("public Net(long classes = 10, Device? device = null", source);
    }
}
