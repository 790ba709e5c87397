namespace CeDsl.Networks;

// torchvision's MobileNetV2 1.0x (keys features.*, classifier.1) and ShuffleNetV2 0.5x / 1.0x
// (keys conv1, stage2..4, conv5, fc), with SE and CE variants.
//
// CE (Placement.Paper, CE in the blocks only): MobileNetV2 after the depthwise convolution's norm,
// before ReLU6 (the projection's norm has no activation); ShuffleNetV2 after the last norm before
// a ReLU in each branch, i.e. before the branch's final ReLU (our rule for the paper's "following
// similar strategies"). SE: MobileNetV2 after the depthwise convolution's ReLU6 with reduction 4
// (MobileNetV3's place and ratio); ShuffleNetV2 at the end of branch2 (its paper's SE variant) with
// reduction 2, the largest that divides the 1.0x branch widths 58, 116 and 232.

/// <summary>MobileNetV2's inverted residual with expansion 1 (no expanding convolution).</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(1)] [Norm]
public partial class InvertedResidual1;

/// <summary>MobileNetV2's inverted residual with expansion 6.</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(1, ExpandInput = 6, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "1.0")] [Norm(Name = "1.1")] [ReLU6(Name = "1.2")]
[Conv(1)] [Norm]
public partial class InvertedResidual;

/// <summary>The expansion-1 inverted residual with squeeze-and-excitation after the depthwise ReLU6.</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")] [SE(R = 4)]
[Conv(1)] [Norm]
public partial class SeInvertedResidual1;

/// <summary>The expansion-6 inverted residual with squeeze-and-excitation after the depthwise ReLU6.</summary>
[Block(Residual = Shortcut.IdentityIfSameShape)]
[Seq("conv")]
[Conv(1, ExpandInput = 6, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Conv(3, Depthwise = true, Stride = From.Parameter, Name = "1.0")] [Norm(Name = "1.1")] [ReLU6(Name = "1.2")] [SE(R = 4)]
[Conv(1)] [Norm]
public partial class SeInvertedResidual;

/// <summary>torchvision's MobileNetV2 1.0x: 3,504,872 parameters, 0.30 G multiply-accumulates at 224x224.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem(Name = "features")] [Conv(3, Out = 32, Stride = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Stage(typeof(InvertedResidual1), Out = 16, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 2, Out = 24, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 3, Out = 32, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 4, Out = 64, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 3, Out = 96, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 3, Out = 160, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 1, Out = 320, Name = "features")]
[Seq("features")] [Conv(1, Out = 1280, Name = "18.0")] [Norm(Name = "18.1")] [ReLU6(Name = "18.2")]
[Head] [GlobalAvgPool] [Flatten]
[Seq("classifier")] [Dropout(0.2)] [Linear(InitStd = 0.01)]
public partial class MobileNetV2;

/// <summary>SE-MobileNetV2: squeeze-and-excitation (reduction 4) after every depthwise convolution's ReLU6.</summary>
[Network(Input = "3x224x224", Classes = 1000)]
[Stem(Name = "features")] [Conv(3, Out = 32, Stride = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Stage(typeof(SeInvertedResidual1), Out = 16, Name = "features")]
[Stage(typeof(SeInvertedResidual), Blocks = 2, Out = 24, Stride = 2, Name = "features")]
[Stage(typeof(SeInvertedResidual), Blocks = 3, Out = 32, Stride = 2, Name = "features")]
[Stage(typeof(SeInvertedResidual), Blocks = 4, Out = 64, Stride = 2, Name = "features")]
[Stage(typeof(SeInvertedResidual), Blocks = 3, Out = 96, Name = "features")]
[Stage(typeof(SeInvertedResidual), Blocks = 3, Out = 160, Stride = 2, Name = "features")]
[Stage(typeof(SeInvertedResidual), Blocks = 1, Out = 320, Name = "features")]
[Seq("features")] [Conv(1, Out = 1280, Name = "18.0")] [Norm(Name = "18.1")] [ReLU6(Name = "18.2")]
[Head] [GlobalAvgPool] [Flatten]
[Seq("classifier")] [Dropout(0.2)] [Linear(InitStd = 0.01)]
public partial class SeMobileNetV2;

/// <summary>CE-MobileNetV2: CE after the depthwise convolution's norm, before ReLU6, in all 17 inverted residuals.</summary>
[Network(Input = "3x224x224", Classes = 1000, CE = Placement.Paper, CEInOwnLayers = false)]
[Stem(Name = "features")] [Conv(3, Out = 32, Stride = 2, Name = "0.0")] [Norm(Name = "0.1")] [ReLU6(Name = "0.2")]
[Stage(typeof(InvertedResidual1), Out = 16, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 2, Out = 24, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 3, Out = 32, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 4, Out = 64, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 3, Out = 96, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 3, Out = 160, Stride = 2, Name = "features")]
[Stage(typeof(InvertedResidual), Blocks = 1, Out = 320, Name = "features")]
[Seq("features")] [Conv(1, Out = 1280, Name = "18.0")] [Norm(Name = "18.1")] [ReLU6(Name = "18.2")]
[Head] [GlobalAvgPool] [Flatten]
[Seq("classifier")] [Dropout(0.2)] [Linear(InitStd = 0.01)]
public partial class CeMobileNetV2;

/// <summary>ShuffleNetV2's downsampling unit (torchvision's InvertedResidual with stride 2); the stage's Out is the branch width.</summary>
[Block(Init = Init.Default)]
[Branch("branch1")] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Concat] [Shuffle(2)]
public partial class ShuffleDownUnit;

/// <summary>ShuffleNetV2's basic unit: channel split, one branch, concatenation, shuffle.</summary>
[Block(Init = Init.Default)]
[Split] [Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true)] [Norm] [Conv(1)] [Norm] [ReLU]
[Concat] [Shuffle(2)]
public partial class ShuffleUnit;

/// <summary>The downsampling unit with squeeze-and-excitation at the end of branch2.</summary>
[Block(Init = Init.Default)]
[Branch("branch1")] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU]
[Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU] [SE(R = 2)]
[Concat] [Shuffle(2)]
public partial class SeShuffleDownUnit;

/// <summary>The basic unit with squeeze-and-excitation at the end of branch2.</summary>
[Block(Init = Init.Default)]
[Split] [Branch("branch2")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true)] [Norm] [Conv(1)] [Norm] [ReLU] [SE(R = 2)]
[Concat] [Shuffle(2)]
public partial class SeShuffleUnit;

/// <summary>torchvision's ShuffleNetV2 0.5x: 1,366,792 parameters, 0.041 G multiply-accumulates at 224x224.</summary>
[Network(Input = "3x224x224", Classes = 1000, Init = Init.Default)]
[Stem(Name = "conv1")] [Conv(3, Out = 24, Stride = 2)] [Norm] [ReLU]
[Seq] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 24, Stride = 2, Name = "stage2")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 8, Out = 48, Stride = 2, Name = "stage3")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 96, Stride = 2, Name = "stage4")]
[Seq("conv5")] [Conv(1, Out = 1024)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class ShuffleNetV2X05;

/// <summary>SE-ShuffleNetV2 0.5x.</summary>
[Network(Input = "3x224x224", Classes = 1000, Init = Init.Default)]
[Stem(Name = "conv1")] [Conv(3, Out = 24, Stride = 2)] [Norm] [ReLU]
[Seq] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(SeShuffleUnit), First = typeof(SeShuffleDownUnit), Blocks = 4, Out = 24, Stride = 2, Name = "stage2")]
[Stage(typeof(SeShuffleUnit), First = typeof(SeShuffleDownUnit), Blocks = 8, Out = 48, Stride = 2, Name = "stage3")]
[Stage(typeof(SeShuffleUnit), First = typeof(SeShuffleDownUnit), Blocks = 4, Out = 96, Stride = 2, Name = "stage4")]
[Seq("conv5")] [Conv(1, Out = 1024)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class SeShuffleNetV2X05;

/// <summary>CE-ShuffleNetV2 0.5x: one CE per branch of every unit, before the branch's final ReLU.</summary>
[Network(Input = "3x224x224", Classes = 1000, Init = Init.Default, CE = Placement.Paper, CEInOwnLayers = false)]
[Stem(Name = "conv1")] [Conv(3, Out = 24, Stride = 2)] [Norm] [ReLU]
[Seq] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 24, Stride = 2, Name = "stage2")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 8, Out = 48, Stride = 2, Name = "stage3")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 96, Stride = 2, Name = "stage4")]
[Seq("conv5")] [Conv(1, Out = 1024)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class CeShuffleNetV2X05;

/// <summary>torchvision's ShuffleNetV2 1.0x: 2,278,604 parameters, 0.146 G multiply-accumulates at 224x224.</summary>
[Network(Input = "3x224x224", Classes = 1000, Init = Init.Default)]
[Stem(Name = "conv1")] [Conv(3, Out = 24, Stride = 2)] [Norm] [ReLU]
[Seq] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 58, Stride = 2, Name = "stage2")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 8, Out = 116, Stride = 2, Name = "stage3")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 232, Stride = 2, Name = "stage4")]
[Seq("conv5")] [Conv(1, Out = 1024)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class ShuffleNetV2X10;

/// <summary>SE-ShuffleNetV2 1.0x.</summary>
[Network(Input = "3x224x224", Classes = 1000, Init = Init.Default)]
[Stem(Name = "conv1")] [Conv(3, Out = 24, Stride = 2)] [Norm] [ReLU]
[Seq] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(SeShuffleUnit), First = typeof(SeShuffleDownUnit), Blocks = 4, Out = 58, Stride = 2, Name = "stage2")]
[Stage(typeof(SeShuffleUnit), First = typeof(SeShuffleDownUnit), Blocks = 8, Out = 116, Stride = 2, Name = "stage3")]
[Stage(typeof(SeShuffleUnit), First = typeof(SeShuffleDownUnit), Blocks = 4, Out = 232, Stride = 2, Name = "stage4")]
[Seq("conv5")] [Conv(1, Out = 1024)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class SeShuffleNetV2X10;

/// <summary>CE-ShuffleNetV2 1.0x: one CE per branch of every unit, before the branch's final ReLU.</summary>
[Network(Input = "3x224x224", Classes = 1000, Init = Init.Default, CE = Placement.Paper, CEInOwnLayers = false)]
[Stem(Name = "conv1")] [Conv(3, Out = 24, Stride = 2)] [Norm] [ReLU]
[Seq] [MaxPool(3, Stride = 2, Padding = 1)]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 58, Stride = 2, Name = "stage2")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 8, Out = 116, Stride = 2, Name = "stage3")]
[Stage(typeof(ShuffleUnit), First = typeof(ShuffleDownUnit), Blocks = 4, Out = 232, Stride = 2, Name = "stage4")]
[Seq("conv5")] [Conv(1, Out = 1024)] [Norm] [ReLU]
[Head] [GlobalAvgPool] [Flatten] [Linear]
public partial class CeShuffleNetV2X10;
