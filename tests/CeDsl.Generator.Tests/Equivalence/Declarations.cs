using CeDsl;

namespace CeDsl.Generator.Tests.Equivalence;

// Compiled into this test assembly: the generator runs as an analyzer and completes these classes.

[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.BN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.BN)] [CE(GroupSize = 16, R = 4)]
[Add] [ReLU]
public partial class DslBottleneck;

[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(1, ExpandInput = 6, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "1.0")] [Norm(Name = "1.1")] [ReLU6(Name = "1.2")]
[Conv(1)] [Norm]
public partial class DslInvertedResidual;

[Block]
[Branch("branch1")]
[Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Branch("branch2")]
[Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Concat] [Shuffle(2)]
public partial class DslShuffleDownUnit;

[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(3)] [Norm(Kind.BN)]
[Add] [ReLU]
public partial class DslBasicBlock;

/// <summary>A CIFAR-style CE-ResNet: stem CE (group size 64 requested), CE in the first stage only.</summary>
[Network(Input = "3x16x16", Classes = 10, CE = Placement.Paper, CEBlocks = 2)]
[Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(DslBasicBlock), Blocks = 2, Out = 16)]
[Stage(typeof(DslBasicBlock), Blocks = 2, Out = 32, Stride = 2)]
public partial class DslCifarResNet;

/// <summary>A user's own widths: 24-channel 3x3 convolutions (not a multiple of 16) and a strided 1x1 convolution.</summary>
[Network(Input = "3x12x12", Classes = 10)]
[Conv(3, Out = 24)] [Norm(Kind.BN)] [ReLU]
[Conv(3, Out = 24)] [Norm(Kind.BN)] [ReLU]
[Conv(1, Out = 32, Stride = 2)] [Norm(Kind.BN)] [ReLU]
public partial class DslNarrowNet;
