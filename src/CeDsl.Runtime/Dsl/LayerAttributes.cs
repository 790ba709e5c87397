using System;
using CeDsl.Layers;

namespace CeDsl;

/// <summary>A layer of a block or network; layers are applied in source order.</summary>
public abstract class LayerAttribute : Attribute
{
    /// <summary>
    /// The submodule name, relative to the current container (dots nest containers: "0.1").
    /// Default: PyTorch's convention (<c>conv1</c>, <c>bn1</c>, <c>relu</c>, <c>ce</c>, <c>fc</c>, ...),
    /// or the next key "0", "1", ... inside a container.
    /// </summary>
    public string? Name { get; set; }
}

/// <summary>
/// A 2-D convolution. Output channels: <see cref="Out"/>, else the block's width times
/// <see cref="Expand"/>, else the input channels times <see cref="ExpandInput"/>, else the block's
/// width (the input channels outside blocks and for depthwise convolutions).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ConvAttribute : LayerAttribute
{
    /// <summary>A square convolution of size <paramref name="kernel"/>.</summary>
    public ConvAttribute(int kernel) => Kernel = kernel;

    /// <summary>The kernel size.</summary>
    public int Kernel { get; }

    /// <summary>The stride, or <see cref="From.Parameter"/> for the block's stride. Default 1.</summary>
    public int Stride { get; set; } = 1;

    /// <summary>Zero padding on each side. Default (-1): <c>Kernel / 2</c>.</summary>
    public int Padding { get; set; } = -1;

    /// <summary>The number of groups. Default 1.</summary>
    public int Groups { get; set; } = 1;

    /// <summary>One group per input channel; the output channels default to the input channels.</summary>
    public bool Depthwise { get; set; }

    /// <summary>Output channels as a number (0: not given).</summary>
    public int Out { get; set; }

    /// <summary>Output channels as the block's width times this factor (ResNet's expansion; 0: not given).</summary>
    public int Expand { get; set; }

    /// <summary>Output channels as the input channels times this factor (MobileNetV2's expansion ratio; 0: not given).</summary>
    public int ExpandInput { get; set; }

    /// <summary>The expected input channels, checked against the inferred ones (0: not checked).</summary>
    public int In { get; set; }

    /// <summary>Whether the convolution has a bias. Default false (it is followed by a normalization).</summary>
    public bool Bias { get; set; }
}

/// <summary>A normalization layer over the channels of the previous layer.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NormAttribute : LayerAttribute
{
    /// <summary>A normalization of kind <paramref name="kind"/>.</summary>
    public NormAttribute(Kind kind = Kind.BN) => Kind = kind;

    /// <summary>The kind of normalization.</summary>
    public Kind Kind { get; }

    /// <summary>Groups of <see cref="Kind.GN"/>. Default 32.</summary>
    public int Groups { get; set; } = 32;

    /// <summary>The epsilon added to the variance. Default 1e-5.</summary>
    public double Eps { get; set; } = LayerDefaults.Eps;

    /// <summary>The running-statistics momentum of <see cref="Kind.BN"/>. Default 0.1.</summary>
    public double Momentum { get; set; } = LayerDefaults.Momentum;
}

/// <summary>
/// Channel Equilibrium (<c>CeDsl.Layers.ChannelEquilibrium</c>): must directly follow a normalization
/// and should be followed by an activation.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class CEAttribute : LayerAttribute
{
    /// <summary>The group size d, halved until it divides the channels. Default 16.</summary>
    public int GroupSize { get; set; } = LayerDefaults.GroupSize;

    /// <summary>The reduction ratio r of the instance-reweighting gate. Default 4.</summary>
    public int R { get; set; } = LayerDefaults.Reduction;

    /// <summary>The Newton iterations T. Default 3.</summary>
    public int Iterations { get; set; } = LayerDefaults.Iterations;
}

/// <summary>The batch decorrelation branch alone (<c>CeDsl.Layers.BatchDecorrelation</c>, the paper's BD-ResNet); must directly follow a normalization.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class BDAttribute : LayerAttribute
{
    /// <summary>The group size d, halved until it divides the channels. Default 16.</summary>
    public int GroupSize { get; set; } = LayerDefaults.GroupSize;

    /// <summary>The Newton iterations T. Default 3.</summary>
    public int Iterations { get; set; } = LayerDefaults.Iterations;
}

/// <summary>The adaptive instance inverse branch alone (<c>CeDsl.Layers.AdaptiveInstanceInverse</c>, the paper's AII-ResNet); must directly follow a normalization.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class AIIAttribute : LayerAttribute
{
    /// <summary>The reduction ratio r of the gate. Default 4.</summary>
    public int R { get; set; } = LayerDefaults.Reduction;
}

/// <summary>Squeeze-and-excitation (<c>CeDsl.Layers.SqueezeExcitation</c>).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SEAttribute : LayerAttribute
{
    /// <summary>The reduction ratio r. Default 16.</summary>
    public int R { get; set; } = LayerDefaults.SqueezeExcitationReduction;
}

/// <summary>ReLU. Outside containers every ReLU of a class shares one stateless <c>relu</c> module, as in torchvision.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ReLUAttribute : LayerAttribute;

/// <summary>ReLU6 (MobileNetV2). Outside containers every ReLU6 of a class shares one <c>relu6</c> module.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ReLU6Attribute : LayerAttribute;

/// <summary>2-D max pooling.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class MaxPoolAttribute : LayerAttribute
{
    /// <summary>Max pooling over square windows of size <paramref name="kernel"/>.</summary>
    public MaxPoolAttribute(int kernel) => Kernel = kernel;

    /// <summary>The window size.</summary>
    public int Kernel { get; }

    /// <summary>The stride. Default (0): the window size.</summary>
    public int Stride { get; set; }

    /// <summary>Padding on each side, at most half the window. Default (-1): <c>(Kernel - 1) / 2</c>.</summary>
    public int Padding { get; set; } = -1;
}

/// <summary>2-D average pooling (padding counted in the average, as PyTorch's default).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class AvgPoolAttribute : LayerAttribute
{
    /// <summary>Average pooling over square windows of size <paramref name="kernel"/>.</summary>
    public AvgPoolAttribute(int kernel) => Kernel = kernel;

    /// <summary>The window size.</summary>
    public int Kernel { get; }

    /// <summary>The stride. Default (0): the window size.</summary>
    public int Stride { get; set; }

    /// <summary>Padding on each side, at most half the window. Default (-1): <c>(Kernel - 1) / 2</c>.</summary>
    public int Padding { get; set; } = -1;
}

/// <summary>Adaptive average pooling to <see cref="Size"/> x <see cref="Size"/> (default 1: global average pooling, named <c>avgpool</c>).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class GlobalAvgPoolAttribute : LayerAttribute
{
    /// <summary>The output height and width. Default 1.</summary>
    public int Size { get; set; } = 1;
}

/// <summary>Flattens (N, C, H, W) to (N, C*H*W).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class FlattenAttribute : LayerAttribute;

/// <summary>A fully connected layer on flattened features.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class LinearAttribute : LayerAttribute
{
    /// <summary>A linear layer to the network's classes.</summary>
    public LinearAttribute() { }

    /// <summary>A linear layer with <paramref name="out"/> output features.</summary>
    public LinearAttribute(int @out) => Out = @out;

    /// <summary>Output features (0: the network's <see cref="NetworkAttribute.Classes"/>).</summary>
    public int Out { get; set; }

    /// <summary>Whether the layer has a bias. Default true.</summary>
    public bool Bias { get; set; } = true;

    /// <summary>When positive, weights are initialized normal(0, InitStd) and the bias zero (torchvision's VGG and MobileNetV2 use 0.01).</summary>
    public double InitStd { get; set; }
}

/// <summary>Dropout with probability <see cref="P"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DropoutAttribute : LayerAttribute
{
    /// <summary>Dropout with probability 0.5.</summary>
    public DropoutAttribute() { }

    /// <summary>Dropout with probability <paramref name="p"/>.</summary>
    public DropoutAttribute(double p) => P = p;

    /// <summary>The probability of zeroing an element, in [0, 1). Default 0.5.</summary>
    public double P { get; set; } = 0.5;
}

/// <summary>
/// A selective convolution (<c>CeDsl.Selective.SelectiveConv2d</c>, Jeong &amp; Shin, ICML 2019): the
/// pre-activation unit BN -&gt; ReLU -&gt; gate -&gt; convolution whose input channels training can release
/// (dealloc) and re-use as shifted copies of important channels (realloc). It holds its own
/// normalization, so it replaces <c>[Norm] [ReLU] [Conv(k)]</c>, not a convolution after them.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SelectConvAttribute : LayerAttribute
{
    /// <summary>A square selective convolution of size <paramref name="kernel"/>.</summary>
    public SelectConvAttribute(int kernel) => Kernel = kernel;

    /// <summary>The kernel size.</summary>
    public int Kernel { get; }

    /// <summary>The stride, or <see cref="From.Parameter"/> for the block's stride. Default 1.</summary>
    public int Stride { get; set; } = 1;

    /// <summary>Zero padding on each side. Default (-1): <c>Kernel / 2</c>.</summary>
    public int Padding { get; set; } = -1;

    /// <summary>Output channels as a number (0: not given; then as <see cref="ConvAttribute"/>).</summary>
    public int Out { get; set; }

    /// <summary>Output channels as the block's width times this factor (0: not given).</summary>
    public int Expand { get; set; }

    /// <summary>Output channels as the input channels times this factor (0: not given).</summary>
    public int ExpandInput { get; set; }

    /// <summary>dealloc's threshold: the joint normalized damage released channels may do to any output, in [0, 1). Default 0.001.</summary>
    public double Gamma { get; set; } = LayerDefaults.Gamma;

    /// <summary>realloc copies from the top K channels; 0 prunes only (no copies, no shifts). Default 3.</summary>
    public int K { get; set; } = LayerDefaults.K;

    /// <summary>A channel with more than this many copies is no longer copied; 0: no cap. Default 0.</summary>
    public int NMax { get; set; }

    /// <summary>Dropout rate after the ReLU, in [0, 1). Default 0.</summary>
    public double Dropout { get; set; }
}
