using System.Globalization;
using CeDsl.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace CeDsl.Generator.Tests;

/// <summary>One test per diagnostic: its ID, severity, location (the offending attribute) and message.</summary>
public class DiagnosticTests
{
    /// <summary>
    /// Runs the generator and asserts that the only CeDsl diagnostic is <paramref name="id"/>, reported
    /// at the first occurrence of <paramref name="at"/> in the source (the attribute, without its bracket).
    /// </summary>
    private static Diagnostic Expect(string declarations, string id, string at, string message, DiagnosticSeverity severity = DiagnosticSeverity.Error)
    {
        var source = Samples.Usings + declarations;
        var run = GeneratorHarness.Run(source);
        var diagnostics = run.Diagnostics.ToList();
        Assert.True(diagnostics.Count == 1, "Expected exactly one diagnostic:" + Environment.NewLine + GeneratorRun.Format(diagnostics));
        var diagnostic = diagnostics[0];
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(severity, diagnostic.Severity);
        Assert.Equal(message, diagnostic.GetMessage(CultureInfo.InvariantCulture));

        int offset = source.IndexOf(at, StringComparison.Ordinal);
        Assert.True(offset >= 0, $"'{at}' is not in the source");
        var expected = LinePosition(source, offset);
        var actual = diagnostic.Location.GetLineSpan();
        Assert.Equal("Source0.cs", actual.Path);
        Assert.Equal(expected, (actual.StartLinePosition.Line + 1, actual.StartLinePosition.Character + 1));
        // An absolute link into the repository's docs/diagnostics.md: it opens for a package user too.
        Assert.Matches("^https://[^ ]+/blob/main/docs/diagnostics\\.md#" + id.ToLowerInvariant() + "$", diagnostic.Descriptor.HelpLinkUri);
        return diagnostic;
    }

    /// <summary>One-based line and column of an offset.</summary>
    private static (int Line, int Column) LinePosition(string text, int offset)
    {
        int line = 1, column = 1;
        for (int i = 0; i < offset; i++)
        {
            if (text[i] == '\n') { line++; column = 1; }
            else column++;
        }
        return (line, column);
    }

    [Fact]
    public void CEDSL001_ClassNotPartial() => Expect("""
        [Block]
        [Conv(3)] [Norm] [ReLU]
        public class NotPartial;
        """, "CEDSL001", "Block]", "'NotPartial' must be declared partial so that the generator can complete it");

    [Fact]
    public void CEDSL002_MalformedInput() => Expect("""
        [Network(Input = "3x224", Classes = 10)]
        [Conv(3, Out = 8)]
        public partial class Net;
        """, "CEDSL002", "Network(", "Network input '3x224' is not a shape CxHxW of positive integers, such as \"3x224x224\"");

    [Fact]
    public void CEDSL003_ZeroKernel() => Expect("""
        [Block]
        [Conv(3)] [Norm] [ReLU] [Conv(0)]
        public partial class B;
        """, "CEDSL003", "Conv(0)", "Kernel of Conv must be positive (got 0)");

    [Theory]
    [InlineData("Gamma = 1.5", "Gamma of SelectConv must be in [0, 1) (got 1.5)")]
    [InlineData("K = -1", "K of SelectConv must not be negative (got -1; 0 prunes only)")]
    [InlineData("NMax = -2", "NMax of SelectConv must not be negative (got -2; 0 means no cap)")]
    [InlineData("Dropout = 1.0", "Dropout of SelectConv must be in [0, 1) (got 1)")]
    [InlineData("Stride = 0", "Stride of SelectConv must be positive or From.Parameter (got 0)")]
    public void CEDSL003_SelectConvHyperParameters(string setting, string message) => Expect($$"""
        [Block]
        [SelectConv(1)] [SelectConv(3, {{setting}})]
        public partial class B;
        """, "CEDSL003", "SelectConv(3", message);

    [Fact]
    public void CEDSL003_NegativeStageWidth() => Expect("""
        [Block]
        [Conv(3, Stride = From.Parameter)] [Norm] [ReLU]
        public partial class B;

        [Network(Input = "3x8x8", Classes = 2)]
        [Stage(typeof(B), Out = -4)]
        public partial class Net;
        """, "CEDSL003", "Stage(", "Out of stage 1 must be positive (got -4)");

    [Fact]
    public void CEDSL004_CeNotAfterNorm() => Expect("""
        [Block]
        [Conv(3)] [CE] [ReLU]
        public partial class B;
        """, "CEDSL004", "CE]", "CE must directly follow a normalization layer ([Norm]), but follows [Conv]");

    [Fact]
    public void CEDSL004_BdAtBranchStart() => Expect("""
        [Block]
        [Branch] [BD] [Conv(1)] [Norm] [ReLU]
        [Branch] [Conv(1)] [Norm] [ReLU]
        [Concat]
        public partial class B;
        """, "CEDSL004", "BD]", "BD must directly follow a normalization layer ([Norm]), but follows the start of branch 'branch1'");

    [Fact]
    public void CEDSL005_CeNotFollowedByActivation() => Expect("""
        [Block]
        [Conv(3)] [Norm] [CE] [Conv(1)] [Norm] [ReLU]
        public partial class B;
        """, "CEDSL005", "CE]", "CE is followed by [Conv], not by an activation; CE belongs between a normalization and its ReLU", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL005_CeBeforeResidualWithoutActivation() => Expect("""
        [Block(Residual = Shortcut.Identity)]
        [Conv(3)] [Norm] [CE]
        public partial class B;
        """, "CEDSL005", "CE]", "CE is followed by the end of the block, not by an activation; CE belongs between a normalization and its ReLU", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL006_GroupSizeHalved() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 24)] [Norm] [CE(GroupSize = 16)] [ReLU]
        public partial class Net;
        """, "CEDSL006", "CE(", "Group size 16 of CE 'ce1' does not divide its 24 channels; the halving rule uses group size 8 (3 groups)", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL006_GroupSizeHalvedInAStageIsReportedOnTheStage() => Expect("""
        [Block(Residual = Shortcut.Projection)]
        [Conv(1)] [Norm] [ReLU] [Conv(3, Stride = From.Parameter)] [Norm] [CE(GroupSize = 16)] [ReLU]
        public partial class B;

        [Network(Input = "3x16x16", Classes = 2)]
        [Conv(3, Out = 16)] [Norm] [ReLU]
        [Stage(typeof(B), Blocks = 2, Out = 116, Stride = 2)]
        public partial class Net;
        """, "CEDSL006", "Stage(", "Group size 16 of CE 'layer1.0.ce' does not divide its 116 channels; the halving rule uses group size 4 (29 groups)", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL007_ReductionLargerThanChannels() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 24)] [Norm] [CE(GroupSize = 8, R = 32)] [ReLU]
        public partial class Net;
        """, "CEDSL007", "CE(", "Reduction ratio 32 of CE 'ce1' is larger than its 24 channels");

    [Fact]
    public void CEDSL007_ReductionOfTheCeThePaperRulePutsInABlock() => Expect("""
        [Block(Residual = Shortcut.Projection)]
        [Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [Add] [ReLU]
        public partial class B;

        [Network(Input = "3x8x8", Classes = 2, CE = Placement.Paper, CEReduction = 8)]
        [Stage(typeof(B), Out = 4)]
        public partial class Net;
        """, "CEDSL007", "Stage(", "Reduction ratio 8 of CE 'layer1.0.ce' is larger than its 4 channels");

    [Fact]
    public void CEDSL003_NegativeCeBlocks() => Expect("""
        [Network(Input = "3x8x8", Classes = 2, CE = Placement.Paper, CEBlocks = -1)]
        [Conv(3, Out = 8)] [Norm] [ReLU]
        public partial class Net;
        """, "CEDSL003", "Network(", "CEGroupSize, StemCEGroupSize and CEReduction of network 'Net' must be positive and CEBlocks not negative");

    [Fact]
    public void CEDSL008_ReductionNotDividing() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 24)] [Norm] [ReLU] [SE(R = 5)]
        public partial class Net;
        """, "CEDSL008", "SE(", "Reduction ratio 5 of SE 'se1' does not divide its 24 channels; the gate has 4 hidden features", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL009_IdentityShortcutChannelMismatch() => Expect("""
        [Block(Residual = Shortcut.Identity)]
        [Conv(3)] [Norm] [Add] [ReLU]
        public partial class B;

        [Network(Input = "3x8x8", Classes = 2)]
        [Stage(typeof(B), Out = 8)]
        public partial class Net;
        """, "CEDSL009", "Stage(", "Shape mismatch at the residual addition of 'layer1.0': the main path gives 8x8x8, the identity shortcut 3x8x8; Residual = Shortcut.Projection adds a 1x1 convolution to the shortcut where the shape changes");

    [Fact]
    public void CEDSL009_ConcatSpatialMismatch() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Branch] [Conv(3, Out = 4, Stride = 2)] [Norm] [ReLU]
        [Branch] [Conv(3, Out = 4)] [Norm] [ReLU]
        [Concat]
        public partial class Net;
        """, "CEDSL009", "Concat]", "Shape mismatch at [Concat]: the inputs have different spatial sizes, 4x4 and 8x8");

    [Fact]
    public void CEDSL010_DeclaredInputChannelsDiffer() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 8, In = 4)] [Norm] [ReLU]
        public partial class Net;
        """, "CEDSL010", "Conv(3, Out = 8, In = 4)", "Channel mismatch at Conv 'conv1': it declares In = 4, but the previous layer gives 3 channels");

    [Fact]
    public void CEDSL010_GroupsNotDividingChannels() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 8)] [Norm] [ReLU] [Conv(3, Out = 9, Groups = 2)] [Norm] [ReLU]
        public partial class Net;
        """, "CEDSL010", "Conv(3, Out = 9", "Channel mismatch at Conv 'conv2': 8 input and 9 output channels are not both divisible by 2 groups");

    [Fact]
    public void CEDSL011_KernelLargerThanInput() => Expect("""
        [Network(Input = "3x4x4", Classes = 2)]
        [Conv(7, Out = 8, Padding = 0)] [Norm] [ReLU]
        public partial class Net;
        """, "CEDSL011", "Conv(7", "Conv 'conv1': the 7x7 kernel (padding 0) does not fit its 4x4 input");

    [Fact]
    public void CEDSL011_CeOnOneByOneMap() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 16)] [GlobalAvgPool] [Norm] [CE] [ReLU]
        public partial class Net;
        """, "CEDSL011", "CE]", "CE 'ce1': the instance variance over H*W positions needs a feature map larger than 1x1, but it gets 1x1");

    [Fact]
    public void CEDSL011_PoolingWindowLargerThanInput() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 8, Stride = 4)] [Norm] [ReLU] [MaxPool(3, Padding = 0)]
        public partial class Net;
        """, "CEDSL011", "MaxPool(", "MaxPool 'maxpool': a 3x3 window (padding 0) does not fit a 2x2 input");

    [Fact]
    public void CEDSL012_StageTypeIsNotABlock() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Stage(typeof(string), Out = 8)]
        public partial class Net;
        """, "CEDSL012", "Stage(", "Stage type 'string' is not a class marked [Block]");

    [Fact]
    public void CEDSL013_DuplicateName() => Expect("""
        [Block]
        [Conv(3, Name = "a")] [Norm(Name = "a")] [ReLU]
        public partial class B;
        """, "CEDSL013", "Norm(Name", "Submodule name 'a' is already used by another layer of 'B'");

    [Fact]
    public void CEDSL014_InvalidName() => Expect("""
        [Block]
        [Conv(3, Name = "1st")] [Norm] [ReLU]
        public partial class B;
        """, "CEDSL014", "Conv(3", "'1st' is not a valid submodule name: '1st' is a member of the generated class and must be a C# identifier");

    [Fact]
    public void CEDSL014_NameOfAUserMember() => Expect("""
        [Block]
        [Conv(3)] [Norm] [ReLU(Name = "Helper")]
        public partial class B { public int Helper() => 0; }
        """, "CEDSL014", "ReLU(", "'Helper' is not a valid submodule name: 'Helper' is already a member of 'B' or of TorchSharp's Module");

    [Fact]
    public void CEDSL015_ConcatWithoutSplit() => Expect("""
        [Block]
        [Conv(3)] [Norm] [ReLU] [Concat]
        public partial class B;
        """, "CEDSL015", "Concat]", "[Concat] needs a preceding [Split] or [Branch]");

    [Fact]
    public void CEDSL015_UnnamedLayerInsideANestedContainer() => Expect("""
        [Block]
        [Seq("conv")]
        [Conv(3, Name = "0.0")] [Norm(Name = "0.1")] [ReLU] [Conv(3, Name = "0.2")]
        public partial class B;
        """, "CEDSL015", "ReLU]",
        "[ReLU] has no name but is declared inside container 'conv.0', before 'conv.0.2', but would run after that container's layers; name it inside the container (Name = \"0.<name>\")");

    [Fact]
    public void CEDSL015_AddWithoutResidual() => Expect("""
        [Block]
        [Conv(3)] [Norm] [Add] [ReLU]
        public partial class B;
        """, "CEDSL015", "Add]", "[Add] needs a block with a residual shortcut ([Block(Residual = Shortcut.Projection)] or another Shortcut)");

    [Fact]
    public void CEDSL016_NestedClass() => Expect("""
        public partial class Outer
        {
            [Block]
            [Conv(3)] [Norm] [ReLU]
            public partial class Inner;
        }
        """, "CEDSL016", "Block]", "'Inner' cannot be generated: nested types are not supported; declare it directly in a namespace");

    [Fact]
    public void CEDSL016_LayersOnAnotherPartialDeclaration() => Expect("""
        [Block]
        [Conv(3)] [Norm]
        public partial class B;

        [ReLU]
        public partial class B;
        """, "CEDSL016", "ReLU]", "'B' cannot be generated: its layer attributes must all be on the declaration that carries [Block] or [Network] (the order across partial declarations is not defined)");

    [Fact]
    public void CEDSL017_StrideParameterInANetwork() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 8, Stride = From.Parameter)] [Norm] [ReLU]
        public partial class Net;
        """, "CEDSL017", "Conv(", "Stride = From.Parameter takes the stride a stage passes to a block; 'Net' is not a block");

    [Fact]
    public void CEDSL018_StageStrideUnused() => Expect("""
        [Block]
        [Conv(3)] [Norm] [ReLU]
        public partial class B;

        [Network(Input = "3x8x8", Classes = 2)]
        [Stage(typeof(B), Out = 8, Stride = 2)]
        public partial class Net;
        """, "CEDSL018", "Stage(", "Stage stride 2 is ignored: block 'B' has no layer with Stride = From.Parameter", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL019_OutputIsNotTheClasses() => Expect("""
        [Network(Input = "3x8x8", Classes = 10)]
        [Conv(3, Out = 8)] [Norm] [ReLU]
        [Head] [GlobalAvgPool] [Flatten] [Linear(7)]
        public partial class Net;
        """, "CEDSL019", "Network(", "Network 'Net' ends with 7 features, but must end with 10 class scores (a linear layer on flattened features)");

    [Fact]
    public void CEDSL005_TheHeadTheGeneratorAddsIsNotNamedAsALayer() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 8)] [Norm] [CE(GroupSize = 8)]
        public partial class Net;
        """, "CEDSL005", "CE(", "CE is followed by the head the generator adds (global average pooling, flatten, fc), not by an activation; CE belongs between a normalization and its ReLU", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL010_GroupNormSuggestsADivisor() => Expect("""
        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 24)] [Norm(Kind.GN, Groups = 32)] [ReLU]
        public partial class Net;
        """, "CEDSL010", "Norm(", "Channel mismatch at GN 'bn1': 24 channels are not divisible by 32 groups; set Groups to a divisor of 24, such as 24");

    [Fact]
    public void CEDSL021_CeInANetworkWithoutPlacement() => Expect("""
        [Network(Input = "3x8x8", Classes = 2, CE = Placement.None)]
        [Conv(3, Out = 8)] [Norm] [CE] [ReLU]
        public partial class Net;
        """, "CEDSL021", "CE]", "[CE] has no effect: network 'Net' has CE = Placement.None, which builds no CE, BD or AII layer", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL021_CeBlocksWithoutThePapersPlacement() => Expect("""
        [Network(Input = "3x8x8", Classes = 2, CEBlocks = 3)]
        [Conv(3, Out = 8)] [Norm] [ReLU]
        public partial class Net;
        """, "CEDSL021", "Network(", "CEBlocks = 3 has no effect: CEBlocks limits the blocks Placement.Paper puts CE in, but network 'Net' has CE = Placement.Explicit", DiagnosticSeverity.Warning);

    [Fact]
    public void CEDSL022_InputWithTheChannelsLast() => Expect("""
        [Network(Input = "32x32x3", Classes = 2)]
        [Conv(3, Out = 8)] [Norm] [ReLU]
        public partial class Net;
        """, "CEDSL022", "Network(", "Network input '32x32x3' looks like height x width x channels, but Input is channels x height x width; did you mean \"3x32x32\"?", DiagnosticSeverity.Warning);

    [Fact]
    public void EveryErrorOfAClassIsReported()
    {
        var source = Samples.Usings + """
            [Block]
            [Conv(0)] [Norm] [CE(GroupSize = 0)] [ReLU] [Concat]
            public partial class B;
            """;
        var run = GeneratorHarness.Run(source);
        var messages = run.Diagnostics.Select(d => (d.Id, Line: d.Location.GetLineSpan().StartLinePosition.Line, d.GetMessage(CultureInfo.InvariantCulture))).ToList();
        Assert.Equal(
            [
                ("CEDSL003", 4, "Kernel of Conv must be positive (got 0)"),
                ("CEDSL003", 4, "GroupSize of CE must be positive (got 0)"),
                ("CEDSL015", 4, "[Concat] needs a preceding [Split] or [Branch]"),
            ],
            messages);
    }

    [Fact]
    public void AClassThatFailsAddsNoFollowOnErrors()
    {
        // A block with an error, a network of it, and code that uses both: only the block's diagnostic is reported.
        var run = GeneratorHarness.Run(Samples.Usings + """
            [Block]
            [Conv(0)] [Norm] [ReLU]
            public partial class B;

            [Network(Input = "3x8x8", Classes = 2)]
            [Stage(typeof(B), Out = 4)]
            public partial class Net;

            public static class User
            {
                public static object Use()
                {
                    using var net = new Net(classes: 5);
                    using var folded = net.Fold();
                    var architecture = Net.Architecture;
                    var block = B.DescribeArchitecture(inChannels: 3, width: 4, inputHeight: 8, inputWidth: 8, stride: 2);
                    return new B(3, 4, stride: 2, placement: Placement.Paper).forward(TorchSharp.torch.zeros(1, 3, 8, 8));
                }
            }
            """);
        Assert.Equal(["CEDSL003"], run.Diagnostics.Select(d => d.Id));
        Assert.True(run.CompilerProblems().Count == 0, GeneratorRun.Format(run.CompilerProblems()));
        Assert.Equal(["Demo.B.g.cs", "Demo.Net.g.cs"], run.HintNames.Order());
    }
}
