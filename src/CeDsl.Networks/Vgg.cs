namespace CeDsl.Networks;

// VGG-16 with batch normalization for 32x32 inputs (CIFAR-10, and Fashion-MNIST padded to 32x32):
// torchvision's "features" layout (keys features.0, features.1, ...; convolutions with bias),
// five 2x2 max-pools down to 1x1, one linear classifier on the 512 features, as in the CIFAR
// experiments the paper's Fig. 3c/d refers to. CE goes between every BN and its ReLU (named
// features.ce1 ... features.ce13, so the other keys stay the baseline's); SE (reduction 16) after
// every ReLU.

/// <summary>VGG-16 with BN for 32x32 inputs: 14,728,266 parameters with 10 classes.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Seq("features")]
[Conv(3, Out = 64, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 64, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 128, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 128, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Head] [Flatten] [Linear(Name = "classifier")]
public partial class Vgg16Bn;

/// <summary>SE-VGG-16 with BN: squeeze-and-excitation after every ReLU.</summary>
[Network(Input = "3x32x32", Classes = 10)]
[Seq("features")]
[Conv(3, Out = 64, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 64, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [MaxPool(2)]
[Conv(3, Out = 128, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 128, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [MaxPool(2)]
[Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [MaxPool(2)]
[Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [MaxPool(2)]
[Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [SE(R = 16)] [MaxPool(2)]
[Head] [Flatten] [Linear(Name = "classifier")]
public partial class SeVgg16Bn;

/// <summary>CE-VGG-16 with BN: CE between every BN and its ReLU (the paper's CIFAR-10 analysis).</summary>
[Network(Input = "3x32x32", Classes = 10, CE = Placement.Paper)]
[Seq("features")]
[Conv(3, Out = 64, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 64, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 128, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 128, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 256, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [Conv(3, Out = 512, Bias = true)] [Norm] [ReLU] [MaxPool(2)]
[Head] [Flatten] [Linear(Name = "classifier")]
public partial class CeVgg16Bn;
