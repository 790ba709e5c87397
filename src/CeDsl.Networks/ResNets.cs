namespace CeDsl.Networks;

// torchvision's ResNets (key names conv1, bn1, layer1.0.conv1, ..., downsample.0/1, fc) and their
// SE and CE variants. CE follows the reference code: stem CE after bn1 (group size 64), then one
// CE after the last norm of each block in layer1..layer3 (Placement.Paper with CEBlocks); SE
// follows SENet: after the last norm of every block, before the addition, reduction 16.

/// <summary>ResNet-18/34's basic block (torchvision's <c>BasicBlock</c>).</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(3)] [Norm(Kind.BN)]
[Add] [ReLU]
public partial class BasicBlock;

/// <summary>The basic block with squeeze-and-excitation after <c>bn2</c>.</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(3)] [Norm(Kind.BN)] [SE(R = 16)]
[Add] [ReLU]
public partial class SeBasicBlock;

/// <summary>ResNet-50/101's bottleneck (torchvision's <c>Bottleneck</c>, stride on the 3x3 convolution).</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.BN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.BN)]
[Add] [ReLU]
public partial class Bottleneck;

/// <summary>The bottleneck with squeeze-and-excitation after <c>bn3</c>.</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.BN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.BN)] [SE(R = 16)]
[Add] [ReLU]
public partial class SeBottleneck;

/// <summary>The bottleneck with batch decorrelation only after <c>bn3</c> (the paper's BD-ResNet-50, Table 4).</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.BN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.BN)] [BD(GroupSize = 16)]
[Add] [ReLU]
public partial class BdBottleneck;

/// <summary>The bottleneck with adaptive instance inverse only after <c>bn3</c> (the paper's AII-ResNet-50, Table 4).</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.BN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.BN)] [AII(R = 4)]
[Add] [ReLU]
public partial class AiiBottleneck;

/// <summary>torchvision's ResNet-18: 11,689,512 parameters, 1.82 G multiply-accumulates at 224x224.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 64)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 128, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 256, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 512, Stride = 2)]
public partial class ResNet18;

/// <summary>SE-ResNet-18: squeeze-and-excitation (reduction 16) in every block.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 64)]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 128, Stride = 2)]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 256, Stride = 2)]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 512, Stride = 2)]
public partial class SeResNet18;

/// <summary>
/// CE-ResNet-18: stem CE, CE after <c>bn2</c> in the six blocks of layer1..layer3. The paper says
/// "each residual block"; the reference constructor for this depth is broken as released, so the
/// ResNet-50 rule (no CE in the 512-channel stage) is followed.
/// </summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 6)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 64)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 128, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 256, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 512, Stride = 2)]
public partial class CeResNet18;

/// <summary>torchvision's ResNet-50: 25,557,032 parameters, 4.11 G multiply-accumulates at 224x224.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(Bottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class ResNet50;

/// <summary>SE-ResNet-50: squeeze-and-excitation (reduction 16) in every block.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(SeBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(SeBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(SeBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(SeBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class SeResNet50;

/// <summary>
/// The reference CE-ResNet-50: 29,331,926 parameters; CE after <c>bn1</c> (group size 64) and after
/// <c>bn3</c> of the 13 blocks of layer1..layer3, state-dict keys as the reference code.
/// </summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 13)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(Bottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class CeResNet50;

/// <summary>BD-ResNet-50 (paper, Table 4): batch decorrelation alone where CE-ResNet-50 has CE.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 13)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [BD(GroupSize = 64)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(BdBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(BdBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(BdBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(BdBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class BdResNet50;

/// <summary>AII-ResNet-50 (paper, Table 4): adaptive instance inverse alone where CE-ResNet-50 has CE.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 13)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [AII(R = 4)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(AiiBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(AiiBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(AiiBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(AiiBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class AiiResNet50;

/// <summary>torchvision's ResNet-101: 44,549,160 parameters, 7.83 G multiply-accumulates at 224x224.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(Bottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 23, Out = 256, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class ResNet101;

/// <summary>SE-ResNet-101: squeeze-and-excitation (reduction 16) in every block.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(SeBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(SeBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(SeBottleneck), Blocks = 23, Out = 256, Stride = 2)]
[Stage(typeof(SeBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class SeResNet101;

/// <summary>CE-ResNet-101: stem CE and CE in the first seven residual blocks (layer1's 3, layer2's 4), as the paper says.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 7)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(Bottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 23, Out = 256, Stride = 2)]
[Stage(typeof(Bottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class CeResNet101;
