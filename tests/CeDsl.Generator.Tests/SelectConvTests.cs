using CeDsl.Generator.Tests.Infrastructure;

namespace CeDsl.Generator.Tests;

/// <summary>[SelectConv] becomes a SelectiveConv2d with the declared hyper-parameters.</summary>
public class SelectConvTests
{
    private const string Block = """
        [Block(Residual = Shortcut.IdentityIfSameShape)]
        [SelectConv(1)] [SelectConv(3, K = 0, Stride = From.Parameter, Gamma = 0.01)] [SelectConv(1, Expand = 4, NMax = 32, Dropout = 0.1)]
        public partial class Unit;
        """;

    [Fact]
    public void EachAttributeIsOneSelectiveConvolution()
    {
        var source = GeneratorHarness.GenerateClean(Block, "Unit");
        Assert.Contains("using CeDsl.Selective;", source);
        Assert.Contains("private readonly SelectiveConv2d sconv1;", source);
        // Every value is passed, the attribute's defaults included: the layer's own defaults are never relied on.
        Assert.Contains("sconv1 = new SelectiveConv2d(inChannels, width, 1, stride: 1, padding: 0, dropout: 0.0, gamma: 0.001, k: 3, nMax: null, device: device, dtype: dtype);", source);
        Assert.Contains("sconv2 = new SelectiveConv2d(width, width, 3, stride: stride, padding: 1, dropout: 0.0, gamma: 0.01, k: 0, nMax: null, device: device, dtype: dtype);", source);
        Assert.Contains("sconv3 = new SelectiveConv2d(width, width * 4, 1, stride: 1, padding: 0, dropout: 0.1, gamma: 0.001, k: 3, nMax: 32, device: device, dtype: dtype);", source);
        // The unit initializes itself (as the released code): no Kaiming initialization is emitted for it.
        Assert.DoesNotContain("kaiming_normal_(sconv", source);
    }

    [Fact]
    public void OnlyFilesThatUseItImportTheSelectiveNamespace()
    {
        var source = GeneratorHarness.GenerateClean("""
            [Block] [Conv(3)] [Norm] [ReLU]
            public partial class Plain;
            """, "Plain");
        Assert.DoesNotContain("CeDsl.Selective", source);
    }

    [Fact]
    public void StagesOfSelectiveBlocksCompileInANetwork()
    {
        var source = GeneratorHarness.GenerateClean(Block + """

            [Network(Input = "1x32x32", Classes = 10)]
            [Conv(3, Out = 16)]
            [Stage(typeof(Unit), Blocks = 2, Out = 16)]
            [Stage(typeof(Unit), Blocks = 2, Out = 32, Stride = 2)]
            public partial class Net;
            """, "Net");
        Assert.Contains("new Unit(inChannels: 64, width: 32, stride: 2", source);
    }

    [Fact]
    public void FoldingPrunesTheKZeroLayersAndCopiesTheOthers()
    {
        var run = GeneratorHarness.Run(Samples.Usings + Block);
        Assert.Empty(run.Diagnostics);
        Assert.Empty(run.CompilerProblems());
        var source = run.Source("Demo.Unit.g.cs");
        var folded = source[source.IndexOf("public sealed class Folded", StringComparison.Ordinal)..];
        // K = 3 (the default) layers re-use released channels as shifted copies: kept as they are.
        Assert.Contains("private readonly SelectiveConv2d sconv1;", folded);
        Assert.Contains("folder.Copy(\"sconv1\");", folded);
        Assert.Contains("folder.Copy(\"sconv3\");", folded);
        // K = 0: a PrunedSelectiveConv2d with the layer's geometry (no selection hyper-parameters), shrunk by folding.
        Assert.Contains("private readonly PrunedSelectiveConv2d sconv2;", folded);
        Assert.Contains("sconv2 = new PrunedSelectiveConv2d(width, width, 3, stride: stride, padding: 1, dropout: 0.0, device: device, dtype: dtype);", folded);
        Assert.Contains("folder.Prune(\"sconv2\");", folded);
        Assert.DoesNotContain("folder.Copy(\"sconv2\")", folded);
    }
}
