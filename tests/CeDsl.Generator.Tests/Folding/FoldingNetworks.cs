using CeDsl;

namespace CeDsl.Generator.Tests.Folding;

// Small networks of every kind, compiled into this test assembly by the generator, to fold.

// ---- ResNet: BasicBlock and Bottleneck with projection shortcuts; placement decides CE.

[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm] [ReLU]
[Conv(3)] [Norm]
[Add] [ReLU]
public partial class FoldBasicBlock;

[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm] [ReLU]
[Conv(1, Expand = 4)] [Norm]
[Add] [ReLU]
public partial class FoldBottleneck;

/// <summary>Baseline: BN only.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 16)] [Norm] [ReLU]
[Stage(typeof(FoldBasicBlock), Blocks = 2, Out = 16)]
[Stage(typeof(FoldBasicBlock), Blocks = 1, Out = 32, Stride = 2)]
public partial class FoldResNet;

/// <summary>CE where the paper puts it: after the stem's bn1 and each block's last norm.</summary>
[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Stem] [Conv(3, Out = 16)] [Norm] [ReLU]
[Stage(typeof(FoldBasicBlock), Blocks = 2, Out = 16)]
[Stage(typeof(FoldBasicBlock), Blocks = 1, Out = 32, Stride = 2)]
public partial class FoldCeResNet;

[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Stem] [Conv(3, Out = 16, Stride = 2)] [Norm] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(FoldBottleneck), Blocks = 2, Out = 8)]
[Stage(typeof(FoldBottleneck), Blocks = 1, Out = 16, Stride = 2)]
public partial class FoldCeBottleneckResNet;

// ---- Variants after the last norm of a ResNet block: SE, BD, AII.

[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [SE(R = 4)] [Add] [ReLU]
public partial class FoldSeBlock;

[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [BD(GroupSize = 8)] [Add] [ReLU]
public partial class FoldBdBlock;

[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [AII(R = 4)] [Add] [ReLU]
public partial class FoldAiiBlock;

[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 16)] [Norm] [ReLU]
[Stage(typeof(FoldSeBlock), Blocks = 1, Out = 16)]
[Stage(typeof(FoldSeBlock), Blocks = 1, Out = 32, Stride = 2)]
public partial class FoldSeResNet;

[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 16)] [Norm] [ReLU]
[Stage(typeof(FoldBdBlock), Blocks = 1, Out = 16)]
[Stage(typeof(FoldBdBlock), Blocks = 1, Out = 32, Stride = 2)]
public partial class FoldBdResNet;

[Network(Input = "3x32x32", Classes = 10)]
[Stem] [Conv(3, Out = 16)] [Norm] [ReLU]
[Stage(typeof(FoldAiiBlock), Blocks = 1, Out = 16)]
[Stage(typeof(FoldAiiBlock), Blocks = 1, Out = 32, Stride = 2)]
public partial class FoldAiiResNet;

// ---- MobileNetV2: depthwise convolutions, IdentityIfSameShape; BD after the depthwise norm
// folds into a coarser grouped convolution.

[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(1, ExpandInput = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "1.0")] [Norm(Name = "1.1")] [ReLU6(Name = "1.2")]
[Conv(1)] [Norm]
public partial class FoldInvertedResidual;

[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper, CEInOwnLayers = false)]
[Stem(Name = "features")] [Conv(3, Out = 16, Stride = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Stage(typeof(FoldInvertedResidual), Blocks = 2, Out = 16, Name = "features")]
[Stage(typeof(FoldInvertedResidual), Blocks = 1, Out = 24, Stride = 2, Name = "features")]
[Seq("features")] [Conv(1, Out = 64, Name = "4.0")] [Norm(Name = "4.1")] [ReLU6(Name = "4.2")]
[Head] [GlobalAvgPool] [Flatten]
[Seq("classifier")] [Dropout(0.2)] [Linear(InitStd = 0.01)]
public partial class FoldMobileNetV2;

[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(1, ExpandInput = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "1.0")] [Norm(Name = "1.1")] [BD(GroupSize = 8, Name = "1.bd")] [ReLU6(Name = "1.2")]
[Conv(1)] [Norm]
public partial class FoldBdInvertedResidual;

[Network(Input = "3x32x32", Classes = 10)]
[Stem(Name = "features")] [Conv(3, Out = 16, Stride = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Stage(typeof(FoldBdInvertedResidual), Blocks = 2, Out = 16, Name = "features")]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class FoldBdMobileNet;

// ---- ShuffleNetV2: split, branches, concat, shuffle; one CE per branch with Paper.

[Block(Init = Init.Default)]
[Branch("branch1")] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Concat] [Shuffle(2)]
public partial class FoldShuffleDownUnit;

[Block(Init = Init.Default)]
[Split] [Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true)] [Norm] [Conv(1)] [Norm] [ReLU]
[Concat] [Shuffle(2)]
public partial class FoldShuffleUnit;

[Network(Input = "3x32x32", Classes = 10, Init = Init.Default, CE = Placement.Paper, CEInOwnLayers = false)]
[Stem(Name = "conv1")] [Conv(3, Out = 16, Stride = 2)] [Norm] [ReLU]
[Stage(typeof(FoldShuffleUnit), First = typeof(FoldShuffleDownUnit), Blocks = 3, Out = 16, Stride = 2, Name = "stage2")]
[Seq("conv5")] [Conv(1, Out = 64)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class FoldShuffleNetV2;

// ---- A VGG-like plain network: CE after every BN (the paper's rule in a network's own layers).

[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Seq("features")]
[Conv(3, Out = 16, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 32)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 32)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten]
[Seq("classifier")] [Linear(24)] [ReLU] [Dropout(0.5)] [Linear]
public partial class FoldVgg;

// ---- Norms that cannot be folded: CE after GN / IN / LN, BD after GN (kept norm and a 1x1
// grouped map), AII after IN; a norm after a pool (no convolution: kept, its AII folded alone); a
// BatchNorm1d in the head (kept).

[Network(Input = "3x32x32", Classes = 10)]
[Seq("features")]
[Conv(3, Out = 16)] [Norm(Kind.GN, Groups = 4)] [CE(GroupSize = 8)] [ReLU]
[Conv(3, Out = 16)] [Norm(Kind.IN)] [CE(GroupSize = 8)] [ReLU]
[Conv(3, Out = 16)] [Norm(Kind.LN)] [CE(GroupSize = 8)] [ReLU]
[Conv(3, Out = 16)] [Norm(Kind.GN, Groups = 4)] [BD(GroupSize = 8)] [ReLU]
[Conv(3, Out = 16)] [Norm(Kind.IN)] [AII] [ReLU]
[MaxPool(2)] [Norm] [AII]
[Head] [GlobalAvgPool] [Flatten] [Linear(24)] [Norm] [ReLU] [Linear]
public partial class FoldKeptNorms;

// ---- Selective convolutions: the K = 0 layers are pruned when folded, the K = 3 layer is kept.

[Block(Residual = Shortcut.IdentityIfSameShape)]
[SelectConv(1, K = 0, Name = "brc_1")]
[SelectConv(3, K = 0, Stride = From.Parameter, Dropout = 0.1, Name = "brc_2")]
[SelectConv(1, Expand = 4, K = 3, Name = "brc_3")]
public partial class FoldSelectiveBlock;

[Network(Input = "3x16x16", Classes = 10)]
[Conv(3, Out = 32, Name = "conv0")]
[Stage(typeof(FoldSelectiveBlock), Blocks = 2, Out = 8)]
[Stage(typeof(FoldSelectiveBlock), Blocks = 1, Out = 16, Stride = 2)]
[Head] [Norm(Name = "norm_last")] [ReLU] [GlobalAvgPool] [Flatten] [Linear(Name = "classifier")]
public partial class FoldPruningNet;
