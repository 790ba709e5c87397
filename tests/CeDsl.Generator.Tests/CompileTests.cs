using CeDsl.Generator.Tests.Infrastructure;

namespace CeDsl.Generator.Tests;

/// <summary>The generated source compiles, without warnings, against the real TorchSharp and CeDsl.Runtime.</summary>
public class CompileTests
{
    private static void AssertCompiles(string declarations)
    {
        var run = GeneratorHarness.Run(Samples.Usings + declarations);
        Assert.Empty(run.Diagnostics);
        Assert.NotEmpty(run.HintNames);
        var problems = run.CompilerProblems();
        Assert.True(problems.Count == 0, GeneratorRun.Format(problems));
    }

    [Fact]
    public void SnapshotSamples() => AssertCompiles(
        Samples.BasicBlock + Samples.CeBottleneck + Samples.InvertedResidual + Samples.ShuffleUnits + Samples.CifarResNet + Samples.SmallVgg);

    [Fact]
    public void PlainNetworkWithEveryStatelessLayer() => AssertCompiles("""
        [Block(Residual = Shortcut.Identity)]
        [Conv(3)] [Norm(Kind.GN, Groups = 4)] [ReLU6] [Conv(3, Groups = 2)] [Norm(Kind.IN)]
        [Add] [ReLU]
        public partial class Plain;

        [Network(Input = "3x16x16", Classes = 5)]
        [Stem] [Conv(3, Out = 8, Stride = 2)] [Norm(Kind.LN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)] [AvgPool(2, Stride = 1)]
        [Stage(typeof(Plain), Blocks = 2, Out = 8)]
        [Head] [GlobalAvgPool] [Flatten] [Linear(16, Bias = false)] [Norm(Kind.BN, Name = "bn_head")] [Norm(Kind.LN, Name = "ln_head")] [Dropout(0.25)] [Linear]
        public partial class PlainNet;
        """);

    [Fact]
    public void LayersNamedLikeLocalsParametersAndKeywords() => AssertCompiles("""
        [Block(Residual = Shortcut.Projection)]
        [Conv(3, Stride = From.Parameter, Name = "x")] [Norm(Name = "input")] [ReLU(Name = "identity")]
        [Conv(3, Name = "width")] [Norm(Name = "device")] [CE(GroupSize = 8, Name = "in")] [Add] [ReLU(Name = "stride")]
        public partial class Awkward;

        [Network(Input = "3x8x8", Classes = 2)]
        [Conv(3, Out = 8, Name = "dtype")] [Norm(Name = "classes")] [ReLU(Name = "scope")]
        [Stage(typeof(Awkward), Out = 8, Name = "placement")]
        [Seq("downsample_0")] [Conv(1, Out = 16)] [Norm] [ReLU]
        public partial class AwkwardNet;
        """);
}
