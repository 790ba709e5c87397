namespace CeDsl.Networks;

// Small-input ResNets for 32x32 images (CIFAR-10; Fashion-MNIST padded to 32x32 with inChannels 1):
// a 3x3 stride-1 stem without max-pooling. ResNet-20 is He et al.'s CIFAR network (16/32/64
// channels, three stages of three basic blocks) with projection shortcuts where the shape changes
// (their option B; 272,474 parameters with 10 classes); ResNet-18 is the ImageNet ResNet-18's
// stages on that stem. The channel counts are small, so CE goes in the stem and in every block
// (the paper's ResNet-18 text: "we plug the CE block into each residual block").

/// <summary>The basic block with batch decorrelation only after <c>bn2</c>.</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(3)] [Norm(Kind.BN)] [BD(GroupSize = 16)]
[Add] [ReLU]
public partial class BdBasicBlock;

/// <summary>The basic block with adaptive instance inverse only after <c>bn2</c>.</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(3)] [Norm(Kind.BN)] [AII(R = 4)]
[Add] [ReLU]
public partial class AiiBasicBlock;

/// <summary>ResNet-20 for 32x32 inputs.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(BasicBlock), Blocks = 3, Out = 16)]
[Stage(typeof(BasicBlock), Blocks = 3, Out = 32, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 3, Out = 64, Stride = 2)]
public partial class ResNet20;

/// <summary>SE-ResNet-20: squeeze-and-excitation (reduction 4, for the narrow 16-channel stage) in every block.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(SeBasicBlock4), Blocks = 3, Out = 16)]
[Stage(typeof(SeBasicBlock4), Blocks = 3, Out = 32, Stride = 2)]
[Stage(typeof(SeBasicBlock4), Blocks = 3, Out = 64, Stride = 2)]
public partial class SeResNet20;

/// <summary>CE-ResNet-20: CE after the stem's BN and after <c>bn2</c> of every block.</summary>
[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(BasicBlock), Blocks = 3, Out = 16)]
[Stage(typeof(BasicBlock), Blocks = 3, Out = 32, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 3, Out = 64, Stride = 2)]
public partial class CeResNet20;

/// <summary>BD-ResNet-20: batch decorrelation alone where CE-ResNet-20 has CE.</summary>
[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [BD(GroupSize = 16)] [ReLU]
[Stage(typeof(BdBasicBlock), Blocks = 3, Out = 16)]
[Stage(typeof(BdBasicBlock), Blocks = 3, Out = 32, Stride = 2)]
[Stage(typeof(BdBasicBlock), Blocks = 3, Out = 64, Stride = 2)]
public partial class BdResNet20;

/// <summary>AII-ResNet-20: adaptive instance inverse alone where CE-ResNet-20 has CE.</summary>
[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [AII(R = 4)] [ReLU]
[Stage(typeof(AiiBasicBlock), Blocks = 3, Out = 16)]
[Stage(typeof(AiiBasicBlock), Blocks = 3, Out = 32, Stride = 2)]
[Stage(typeof(AiiBasicBlock), Blocks = 3, Out = 64, Stride = 2)]
public partial class AiiResNet20;

/// <summary>The basic block with squeeze-and-excitation (reduction 4) after <c>bn2</c>, for narrow networks.</summary>
[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(3)] [Norm(Kind.BN)] [SE(R = 4)]
[Add] [ReLU]
public partial class SeBasicBlock4;

/// <summary>ResNet-18 for 32x32 inputs (3x3 stem, no max-pooling): 11,173,962 parameters with 10 classes.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 64)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 64)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 128, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 256, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 512, Stride = 2)]
public partial class ResNet18Cifar;

/// <summary>SE-ResNet-18 for 32x32 inputs.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 64)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 64)]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 128, Stride = 2)]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 256, Stride = 2)]
[Stage(typeof(SeBasicBlock), Blocks = 2, Out = 512, Stride = 2)]
public partial class SeResNet18Cifar;

/// <summary>CE-ResNet-18 for 32x32 inputs: stem CE and CE in every block.</summary>
[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Stem] [Conv(3, Out = 64)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 64)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 128, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 256, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 2, Out = 512, Stride = 2)]
public partial class CeResNet18Cifar;
