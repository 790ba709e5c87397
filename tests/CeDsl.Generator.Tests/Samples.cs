namespace CeDsl.Generator.Tests;

/// <summary>DSL declarations shared by the snapshot, compile and incremental tests.</summary>
internal static class Samples
{
    public const string Usings = """
        using CeDsl;

        namespace Demo;

        """;

    /// <summary>torchvision's BasicBlock (ResNet-18): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).</summary>
    public const string BasicBlock = """
        [Block(Residual = Shortcut.Projection)]
        [Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
        [Conv(3)] [Norm(Kind.BN)]
        [Add] [ReLU]
        public partial class BasicBlock;

        """;

    /// <summary>The reference CE-ResNet-50 bottleneck: CE after bn3, before the residual addition.</summary>
    public const string CeBottleneck = """
        [Block(Residual = Shortcut.Projection)]
        [Conv(1)] [Norm(Kind.BN)] [ReLU]
        [Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
        [Conv(1, Expand = 4)] [Norm(Kind.BN)] [CE(GroupSize = 16, R = 4)]
        [Add] [ReLU]
        public partial class CeBottleneck;

        """;

    /// <summary>torchvision's MobileNetV2 inverted residual, with torchvision's key names.</summary>
    public const string InvertedResidual = """
        [Block(Residual = Shortcut.IdentityIfSameShape)]
        [Seq("conv")]
        [Conv(1, ExpandInput = 6, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
        [Conv(3, Depthwise = true, Stride = From.Parameter, Name = "1.0")] [Norm(Name = "1.1")] [ReLU6(Name = "1.2")]
        [Conv(1)] [Norm]
        public partial class InvertedResidual;

        """;

    /// <summary>torchvision's ShuffleNetV2 units: the stride-2 unit with two branches and the stride-1 unit with a channel split.</summary>
    public const string ShuffleUnits = """
        [Block]
        [Branch("branch1")]
        [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
        [Branch("branch2")]
        [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
        [Concat] [Shuffle(2)]
        public partial class ShuffleDownUnit;

        [Block]
        [Split]
        [Branch("branch2")]
        [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true)] [Norm] [Conv(1)] [Norm] [ReLU]
        [Concat] [Shuffle(2)]
        public partial class ShuffleUnit;

        """;

    /// <summary>A CIFAR-style ResNet with the paper's CE placement (no CE in the last stage).</summary>
    public const string CifarResNet = """
        [Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper, CEBlocks = 4)]
        [Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [ReLU]
        [Stage(typeof(BasicBlock), Blocks = 2, Out = 16)]
        [Stage(typeof(BasicBlock), Blocks = 2, Out = 32, Stride = 2)]
        [Stage(typeof(BasicBlock), Blocks = 2, Out = 64, Stride = 2)]
        public partial class CifarResNet;

        """;

    /// <summary>A small VGG with batch norm in torchvision's layout (features, avgpool, classifier), CE between every BN and ReLU.</summary>
    public const string SmallVgg = """
        [Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
        [Seq("features")]
        [Conv(3, Out = 32, Bias = true)] [Norm(Kind.BN)] [ReLU] [MaxPool(2)]
        [Conv(3, Out = 64, Bias = true)] [Norm(Kind.BN)] [ReLU] [MaxPool(2)]
        [Head] [GlobalAvgPool] [Flatten]
        [Seq("classifier")] [Linear(128, InitStd = 0.01)] [ReLU] [Dropout(0.5)] [Linear(InitStd = 0.01)]
        public partial class SmallVgg;

        """;

    /// <summary>A selective bottleneck: K = 3 layers (copied when folded) around a pruning-only K = 0 layer (pruned when folded).</summary>
    public const string SelectiveBottleneck = """
        [Block(Residual = Shortcut.IdentityIfSameShape)]
        [SelectConv(1, K = 3, Name = "brc_1")]
        [SelectConv(3, K = 0, Stride = From.Parameter, Dropout = 0.1, Name = "brc_2")]
        [SelectConv(1, Expand = 4, K = 3, Name = "brc_3")]
        public partial class SelectiveBottleneck;

        """;
}
