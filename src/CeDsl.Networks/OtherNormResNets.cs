namespace CeDsl.Networks;

// ResNet-50 with group, instance and layer normalization in place of BN, plain and with CE
// stacked after the normalizer (the paper's Table 3). The projection shortcut copies the main
// path's last normalization, so the downsample uses the same normalizer. GN has 32 groups; LN is
// GroupNorm with one group (normalization over C, H, W with a per-channel affine transform).

/// <summary>The bottleneck with group normalization (32 groups).</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.GN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.GN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.GN)]
[Add] [ReLU]
public partial class GnBottleneck;

/// <summary>The bottleneck with instance normalization (affine).</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.IN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.IN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.IN)]
[Add] [ReLU]
public partial class InBottleneck;

/// <summary>The bottleneck with layer normalization over (C, H, W).</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.LN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.LN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.LN)]
[Add] [ReLU]
public partial class LnBottleneck;

/// <summary>ResNet-50 with group normalization.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.GN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(GnBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(GnBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(GnBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(GnBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class GnResNet50;

/// <summary>CE-ResNet-50 with group normalization: CE after the stem's GN and after each block's last GN in layer1..layer3.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 13)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.GN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(GnBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(GnBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(GnBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(GnBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class CeGnResNet50;

/// <summary>ResNet-50 with instance normalization.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.IN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(InBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(InBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(InBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(InBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class InResNet50;

/// <summary>CE-ResNet-50 with instance normalization.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 13)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.IN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(InBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(InBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(InBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(InBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class CeInResNet50;

/// <summary>ResNet-50 with layer normalization.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.LN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(LnBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(LnBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(LnBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(LnBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class LnResNet50;

/// <summary>CE-ResNet-50 with layer normalization.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 13)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.LN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(LnBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(LnBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(LnBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(LnBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class CeLnResNet50;
