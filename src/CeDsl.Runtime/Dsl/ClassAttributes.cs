using System;
using CeDsl.Layers;

namespace CeDsl;

/// <summary>
/// Declares a block: a partial class whose layer attributes, read in source order, form the
/// block's main path. The generator completes the class into a TorchSharp
/// <c>Module&lt;Tensor, Tensor&gt;</c> with a constructor <c>(long inChannels, long width, long stride = 1, ...)</c>
/// that a <see cref="StageAttribute"/> calls.
/// </summary>
/// <example>
/// <code>
/// [Block(Residual = Shortcut.Projection)]
/// [Conv(1)] [Norm(Kind.BN)] [ReLU]
/// [Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
/// [Conv(1, Expand = 4)] [Norm(Kind.BN)] [CE(GroupSize = 16, R = 4)]
/// [Add] [ReLU]
/// public partial class Bottleneck;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class BlockAttribute : Attribute
{
    /// <summary>The residual shortcut. Default <see cref="Shortcut.None"/>.</summary>
    public Shortcut Residual { get; set; }

    /// <summary>How the block's layers are initialized. Default <see cref="CeDsl.Init.TorchVision"/>.</summary>
    public Init Init { get; set; }
}

/// <summary>
/// Declares a network: a partial class whose layer, section and <see cref="StageAttribute"/>
/// attributes, read in source order, form the network. The generator infers every channel count
/// and spatial size from <see cref="Input"/> and completes the class into a TorchSharp
/// <c>Module&lt;Tensor, Tensor&gt;</c> with a constructor <c>(long classes = Classes, Device? device = null, ScalarType? dtype = null)</c>.
/// Without a <see cref="HeadAttribute"/>, torchvision's head is appended: <c>avgpool</c>
/// (global average pooling), <c>flatten</c>, <c>fc</c> (linear to <see cref="Classes"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class NetworkAttribute : Attribute
{
    /// <summary>The input shape as "CxHxW", for example "3x224x224". Required.</summary>
    public string Input { get; set; } = "";

    /// <summary>The number of classes: the output features of the last linear layer. Required.</summary>
    public int Classes { get; set; }

    /// <summary>Where Channel Equilibrium goes. Default <see cref="Placement.Explicit"/>.</summary>
    public Placement CE { get; set; }

    /// <summary>Group size of the CE blocks that <see cref="Placement.Paper"/> inserts. Default 16.</summary>
    public int CEGroupSize { get; set; } = LayerDefaults.GroupSize;

    /// <summary>Group size of the CE blocks that <see cref="Placement.Paper"/> inserts in the <see cref="StemAttribute"/> section. Default 64 (the reference ResNet stem).</summary>
    public int StemCEGroupSize { get; set; } = LayerDefaults.StemGroupSize;

    /// <summary>Reduction ratio of the CE blocks that <see cref="Placement.Paper"/> inserts. Default 4.</summary>
    public int CEReduction { get; set; } = LayerDefaults.Reduction;

    /// <summary>
    /// With <see cref="Placement.Paper"/>, only the first <c>CEBlocks</c> blocks of the stages (counted
    /// across stages) get CE; 0 (the default) means every block. ResNet-50: 13 (no CE in the
    /// 2048-channel stage); ResNet-101: 7.
    /// </summary>
    public int CEBlocks { get; set; }

    /// <summary>
    /// Whether <see cref="Placement.Paper"/> also puts CE in the network's own layers (stem, plain
    /// sequences, head), after every normalization directly followed by an activation. Default
    /// true (the reference ResNet's stem CE, VGG); false keeps CE to the blocks (for example
    /// MobileNetV2, whose paper placement names only the inverted residuals).
    /// </summary>
    public bool CEInOwnLayers { get; set; } = true;

    /// <summary>How the network's own layers are initialized. Default <see cref="CeDsl.Init.TorchVision"/>.</summary>
    public Init Init { get; set; }
}

/// <summary>
/// A stage of a network: <see cref="Blocks"/> instances of a <see cref="BlockAttribute"/> class in a
/// <c>Sequential</c> (keys "0", "1", ...). The first block gets <see cref="Stride"/> and the previous
/// layer's channels; the following blocks stride 1 and the previous block's output channels.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class StageAttribute : Attribute
{
    /// <summary>Creates a stage of <paramref name="block"/> instances.</summary>
    /// <param name="block">A partial class marked with <see cref="BlockAttribute"/>.</param>
    public StageAttribute(Type block) => Block = block;

    /// <summary>The block type.</summary>
    public Type Block { get; }

    /// <summary>A different block type for the stage's first block (ShuffleNetV2's downsampling unit), or null.</summary>
    public Type? First { get; set; }

    /// <summary>The number of blocks. Default 1.</summary>
    public int Blocks { get; set; } = 1;

    /// <summary>
    /// The blocks' width parameter (torchvision's <c>planes</c>): the output channels of the block's
    /// convolutions that declare neither <c>Out</c> nor <c>ExpandInput</c> (times <c>Expand</c>). Required.
    /// </summary>
    public int Out { get; set; }

    /// <summary>The stride of the stage's first block. Default 1.</summary>
    public int Stride { get; set; } = 1;

    /// <summary>
    /// The submodule holding the blocks. Default <c>layer1</c>, <c>layer2</c>, ... by stage. Naming a
    /// container that already exists (for example the <c>features</c> of a <see cref="StemAttribute"/>)
    /// appends the blocks to it, continuing its numeric keys.
    /// </summary>
    public string? Name { get; set; }
}
