using CeDsl;

namespace CeDsl.Generator.Tests.Equivalence;

// Full-size reference architectures declared with the DSL, to check the generator against
// published parameter counts and state-dict key names.

[Block(Residual = Shortcut.Projection)]
[Conv(1)] [Norm(Kind.BN)] [ReLU]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(1, Expand = 4)] [Norm(Kind.BN)]
[Add] [ReLU]
public partial class RefBottleneck;

/// <summary>torchvision's ResNet-50.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(RefBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(RefBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(RefBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(RefBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class RefResNet50;

/// <summary>The reference CE-ResNet-50: stem CE (group size 64), CE after bn3 in layer1..layer3.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEBlocks = 13)]
[Stem] [Conv(7, Out = 64, Stride = 2)] [Norm(Kind.BN)] [ReLU] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(RefBottleneck), Blocks = 3, Out = 64)]
[Stage(typeof(RefBottleneck), Blocks = 4, Out = 128, Stride = 2)]
[Stage(typeof(RefBottleneck), Blocks = 6, Out = 256, Stride = 2)]
[Stage(typeof(RefBottleneck), Blocks = 3, Out = 512, Stride = 2)]
public partial class RefCeResNet50;

/// <summary>MobileNetV2's first inverted residual (expansion 1), torchvision names.</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(1)] [Norm]
public partial class RefInvertedResidual1;

/// <summary>MobileNetV2's inverted residual (expansion 6), torchvision names.</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(1, ExpandInput = 6, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "1.0")] [Norm(Name = "1.1")] [ReLU6(Name = "1.2")]
[Conv(1)] [Norm]
public partial class RefInvertedResidual6;

/// <summary>torchvision's MobileNetV2 1.0x, with its key names.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem(Name = "features")] [Conv(3, Out = 32, Stride = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Stage(typeof(RefInvertedResidual1), Out = 16, Name = "features")]
[Stage(typeof(RefInvertedResidual6), Blocks = 2, Out = 24, Stride = 2, Name = "features")]
[Stage(typeof(RefInvertedResidual6), Blocks = 3, Out = 32, Stride = 2, Name = "features")]
[Stage(typeof(RefInvertedResidual6), Blocks = 4, Out = 64, Stride = 2, Name = "features")]
[Stage(typeof(RefInvertedResidual6), Blocks = 3, Out = 96, Name = "features")]
[Stage(typeof(RefInvertedResidual6), Blocks = 3, Out = 160, Stride = 2, Name = "features")]
[Stage(typeof(RefInvertedResidual6), Blocks = 1, Out = 320, Name = "features")]
[Seq("features")] [Conv(1, Out = 1280, Name = "18.0")] [Norm(Name = "18.1")] [ReLU6(Name = "18.2")]
[Head] [GlobalAvgPool] [Flatten]
[Seq("classifier")] [Dropout(0.2)] [Linear(InitStd = 0.01)]
public partial class RefMobileNetV2;

/// <summary>ShuffleNetV2's downsampling unit (torchvision's InvertedResidual with stride 2).</summary>
[Block(Init = Init.Default)]
[Branch("branch1")] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Concat] [Shuffle(2)]
public partial class RefShuffleDownUnit;

/// <summary>ShuffleNetV2's basic unit (stride 1, channel split).</summary>
[Block(Init = Init.Default)]
[Split] [Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true)] [Norm] [Conv(1)] [Norm] [ReLU]
[Concat] [Shuffle(2)]
public partial class RefShuffleUnit;

/// <summary>torchvision's ShuffleNetV2 1.0x, with its key names.</summary>
[Network(Input = "3x224x224", Classes = 1000, Init = Init.Default)]
[Stem(Name = "conv1")] [Conv(3, Out = 24, Stride = 2)] [Norm] [ReLU]
[Seq] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(RefShuffleUnit), First = typeof(RefShuffleDownUnit), Blocks = 4, Out = 58, Stride = 2, Name = "stage2")]
[Stage(typeof(RefShuffleUnit), First = typeof(RefShuffleDownUnit), Blocks = 8, Out = 116, Stride = 2, Name = "stage3")]
[Stage(typeof(RefShuffleUnit), First = typeof(RefShuffleDownUnit), Blocks = 4, Out = 232, Stride = 2, Name = "stage4")]
[Seq("conv5")] [Conv(1, Out = 1024)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class RefShuffleNetV2;
