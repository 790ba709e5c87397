using System.Text.RegularExpressions;
using CeDsl.Generator.Tests.Infrastructure;

namespace CeDsl.Generator.Tests;

/// <summary>How Network.CE decides where CE goes (snapshots and reference networks cover the paper's rule in detail).</summary>
public class PlacementTests
{
    private const string Blocks = """
        [Block(Residual = Shortcut.Projection)]
        [Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [CE(GroupSize = 8)] [Add] [ReLU]
        public partial class WithCe;

        [Block(Residual = Shortcut.Projection)]
        [Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [BD] [Add] [ReLU]
        public partial class WithBd;

        """;

    private static string Network(string placement, string extra = "") => $$"""
        [Network(Input = "3x16x16", Classes = 10, CE = Placement.{{placement}}{{extra}})]
        [Stem] [Conv(3, Out = 16)] [Norm] [CE] [ReLU]
        [Stage(typeof(WithCe), Blocks = 2, Out = 16)]
        [Stage(typeof(WithBd), Blocks = 2, Out = 32, Stride = 2)]
        public partial class Net;
        """;

    private static int Count(string text, string pattern) => Regex.Matches(text, pattern).Count;

    [Fact]
    public void NoneDropsEveryWrittenCeBdAndAii()
    {
        var run = GeneratorHarness.Run(Samples.Usings + Blocks + Network("None"));
        // The stem's [CE] has no effect under Placement.None: a warning on it, nothing else.
        var warning = Assert.Single(run.Diagnostics);
        Assert.Equal("CEDSL021", warning.Id);
        Assert.Equal("[CE] has no effect: network 'Net' has CE = Placement.None, which builds no CE, BD or AII layer", warning.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Empty(run.CompilerProblems());
        var network = run.TrainedSource("Demo.Net.g.cs");
        Assert.DoesNotContain("ChannelEquilibrium", network);
        Assert.Equal(4, Count(network, "placement: Placement.None"));
    }

    [Fact]
    public void ExplicitKeepsExactlyWhatIsWritten()
    {
        var network = GeneratorHarness.GenerateClean(Blocks + Network("Explicit"), "Net");
        Assert.Equal(1, Count(network, @"new ChannelEquilibrium\(16, groupSize: 16, reduction: 4"));
        Assert.Equal(4, Count(network, "placement: Placement.Explicit"));
        var block = GeneratorHarness.GenerateClean(Blocks + Network("Explicit"), "WithBd");
        Assert.Contains("if (placement != Placement.None)\n                bd = new BatchDecorrelation(width, groupSize: 16", block);
    }

    [Fact]
    public void PaperKeepsWrittenLayersAndDoesNotAddMoreWhereTheyExist()
    {
        // The stem declares a CE and both blocks declare CE/BD: the rule inserts nothing.
        var network = GeneratorHarness.GenerateClean(Blocks + Network("Paper"), "Net");
        Assert.Equal(1, Count(network, "new ChannelEquilibrium"));
        Assert.Equal(4, Count(network, "placement: Placement.Paper"));
        Assert.DoesNotContain("ceGroupSize", network);
    }

    [Fact]
    public void CeBlocksLimitsTheBlocksThatGetCe()
    {
        var network = GeneratorHarness.GenerateClean(Blocks + Network("Paper", ", CEBlocks = 3"), "Net");
        Assert.Equal(3, Count(network, "placement: Placement.Paper"));
        Assert.Matches(@"layer2 = nn\.Sequential\([\s\S]*""0"", new WithBd\([^)]*Placement\.Paper[\s\S]*""1"", new WithBd\([^)]*Placement\.None", network);
    }

    [Fact]
    public void PaperInsertsCeAfterEveryNormFollowedByAnActivationInTheNetworksOwnLayers()
    {
        var network = GeneratorHarness.GenerateClean("""
            [Network(Input = "3x16x16", Classes = 10, CE = Placement.Paper, CEGroupSize = 8, CEReduction = 2)]
            [Conv(3, Out = 16)] [Norm] [ReLU] [Conv(3, Out = 16)] [Norm] [MaxPool(2)] [Conv(3, Out = 32)] [Norm] [ReLU6]
            public partial class Plain;
            """, "Plain");
        // bn1 -> ReLU and bn3 -> ReLU6 get CE; bn2 is followed by pooling.
        Assert.Contains("ce1 = new ChannelEquilibrium(16, groupSize: 8, reduction: 2", network);
        Assert.Contains("ce2 = new ChannelEquilibrium(32, groupSize: 8, reduction: 2", network);
        Assert.Equal(2, Count(network, "new ChannelEquilibrium"));
        Assert.Matches(@"x = bn1\.call\(x\);\s*x = ce1\.call\(x\);\s*x = relu\.call\(x\);", network);
        Assert.Matches(@"x = bn3\.call\(x\);\s*x = ce2\.call\(x\);\s*x = relu6\.call\(x\);", network);
    }

    [Fact]
    public void CeInOwnLayersFalseKeepsThePaperRuleToTheBlocks()
    {
        var declarations = Samples.BasicBlock + """
            [Network(Input = "3x16x16", Classes = 10, CE = Placement.Paper, CEInOwnLayers = false)]
            [Stem] [Conv(3, Out = 16)] [Norm] [ReLU]
            [Stage(typeof(BasicBlock), Out = 16)]
            public partial class Net;
            """;
        var network = GeneratorHarness.GenerateClean(declarations, "Net");
        Assert.DoesNotContain("ChannelEquilibrium", network);
        Assert.Contains("placement: Placement.Paper", network);
        Assert.Contains("new ChannelEquilibrium(width", GeneratorHarness.GenerateClean(declarations, "BasicBlock"));
    }

    [Theory]
    [InlineData("Explicit")]
    [InlineData("None")]
    public void CeInAContainerTakesNoIndexSoTheOtherKeysDoNotDependOnThePlacement(string placement)
    {
        var run = GeneratorHarness.Run(Samples.Usings + $$"""
            [Network(Input = "3x16x16", Classes = 10, CE = Placement.{{placement}})]
            [Seq("features")] [Conv(3, Out = 16)] [Norm] [CE] [ReLU] [Conv(3, Out = 16)] [Norm] [ReLU]
            public partial class Vgg;
            """);
        // With Placement.None the written [CE] is dropped, and the generator says so.
        Assert.Equal(placement == "None" ? ["CEDSL021"] : [], run.Diagnostics.Select(d => d.Id));
        Assert.Empty(run.CompilerProblems());
        var network = run.TrainedSource("Demo.Vgg.g.cs");
        Assert.Matches(@"\(""2"", nn\.ReLU\(\)\)", network);
        Assert.Matches(@"\(""3"", features_3\)", network);
        Assert.Equal(placement == "Explicit", network.Contains("(\"ce\", new ChannelEquilibrium(16", StringComparison.Ordinal));
    }
}
