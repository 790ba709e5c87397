namespace CeDsl.Networks;

// Pre-activation bottleneck ResNets for 32x32 images, plain (BN-ReLU-conv units, the released
// code's BRC) and with selective convolutions (Jeong & Shin, ICML 2019), after the authors'
// released PreResNet: a 3x3 stem "conv0", stages of bottlenecks brc_1 (1x1), brc_2 (3x3), brc_3
// (1x1, x4), 2x2 average pooling between stages, then BN-ReLU, global pooling and the classifier.
// Selective layers: gamma 0.001, K = 3 on the 1x1 layers and K = 0 (pruning only) on the 3x3, as
// released. Depth 9n + 2 with n = 3 blocks per stage: 29 (the released ResNet-164 has n = 18).
// One difference: where a block widens the channels (each stage's first), the released code adds
// the input zero-padded to the new width; here that block has no shortcut (the DSL's
// IdentityIfSameShape).

/// <summary>The pre-activation bottleneck of BN-ReLU-conv units.</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("brc_1")] [Norm(Name = "norm")] [ReLU(Name = "relu")] [Conv(1, Name = "conv")]
[Seq("brc_2")] [Norm(Name = "norm")] [ReLU(Name = "relu")] [Conv(3, Name = "conv")]
[Seq("brc_3")] [Norm(Name = "norm")] [ReLU(Name = "relu")] [Conv(1, Expand = 4, Name = "conv")]
public partial class PreBottleneck;

/// <summary>The pre-activation bottleneck of selective convolutions.</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[SelectConv(1, K = 3, Name = "brc_1")]
[SelectConv(3, K = 0, Name = "brc_2")]
[SelectConv(1, Expand = 4, K = 3, Name = "brc_3")]
public partial class SelectivePreBottleneck;

/// <summary>The selective bottleneck in pruning-only mode: K = 0 everywhere (dealloc, no realloc).</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[SelectConv(1, K = 0, Name = "brc_1")]
[SelectConv(3, K = 0, Name = "brc_2")]
[SelectConv(1, Expand = 4, K = 0, Name = "brc_3")]
public partial class PruningPreBottleneck;

/// <summary>Pre-activation ResNet-29 (bottlenecks) for 32x32 inputs.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Conv(3, Out = 16, Name = "conv0")]
[Stage(typeof(PreBottleneck), Blocks = 3, Out = 16, Name = "block1")]
[AvgPool(2, Name = "trans1")]
[Stage(typeof(PreBottleneck), Blocks = 3, Out = 32, Name = "block2")]
[AvgPool(2, Name = "trans2")]
[Stage(typeof(PreBottleneck), Blocks = 3, Out = 64, Name = "block3")]
[Head] [Norm(Name = "norm_last")] [ReLU(Name = "relu_last")] [GlobalAvgPool] [Flatten] [Linear(Name = "classifier")]
public partial class PreResNet29;

/// <summary>Pre-activation ResNet-29 with selective convolutions (ResNet-SConv).</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Conv(3, Out = 16, Name = "conv0")]
[Stage(typeof(SelectivePreBottleneck), Blocks = 3, Out = 16, Name = "block1")]
[AvgPool(2, Name = "trans1")]
[Stage(typeof(SelectivePreBottleneck), Blocks = 3, Out = 32, Name = "block2")]
[AvgPool(2, Name = "trans2")]
[Stage(typeof(SelectivePreBottleneck), Blocks = 3, Out = 64, Name = "block3")]
[Head] [Norm(Name = "norm_last")] [ReLU(Name = "relu_last")] [GlobalAvgPool] [Flatten] [Linear(Name = "classifier")]
public partial class SelectivePreResNet29;

/// <summary>Pre-activation ResNet-29 with selective convolutions in pruning-only mode (K = 0): channels are released, never re-used.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Conv(3, Out = 16, Name = "conv0")]
[Stage(typeof(PruningPreBottleneck), Blocks = 3, Out = 16, Name = "block1")]
[AvgPool(2, Name = "trans1")]
[Stage(typeof(PruningPreBottleneck), Blocks = 3, Out = 32, Name = "block2")]
[AvgPool(2, Name = "trans2")]
[Stage(typeof(PruningPreBottleneck), Blocks = 3, Out = 64, Name = "block3")]
[Head] [Norm(Name = "norm_last")] [ReLU(Name = "relu_last")] [GlobalAvgPool] [Flatten] [Linear(Name = "classifier")]
public partial class PruningPreResNet29;
