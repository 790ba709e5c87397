namespace CeDsl;

/// <summary>The normalization a <see cref="NormAttribute"/> declares.</summary>
public enum Kind
{
    /// <summary>Batch normalization (<c>BatchNorm2d</c>; <c>BatchNorm1d</c> on flattened features).</summary>
    BN,

    /// <summary>Group normalization (<c>GroupNorm</c> with <see cref="NormAttribute.Groups"/> groups).</summary>
    GN,

    /// <summary>Instance normalization (<c>InstanceNorm2d</c> with an affine transform).</summary>
    IN,

    /// <summary>
    /// Layer normalization: over (C, H, W) with a per-channel affine transform on feature maps
    /// (<c>GroupNorm</c> with one group), <c>LayerNorm</c> over the features on flattened input.
    /// </summary>
    LN,
}

/// <summary>The shortcut of a residual <see cref="BlockAttribute"/>.</summary>
public enum Shortcut
{
    /// <summary>No residual connection: the block is a plain sequence of layers.</summary>
    None,

    /// <summary>
    /// <c>main(x) + x</c>. The main path must keep the input's shape (checked at compile time inside
    /// networks, at construction otherwise).
    /// </summary>
    Identity,

    /// <summary>
    /// <c>main(x) + downsample(x)</c>, where <c>downsample</c> (a 1x1 convolution with the block's
    /// stride, then a normalization: <c>downsample.0</c>, <c>downsample.1</c>) exists only when the
    /// stride or the channel count changes, and the shortcut is the identity otherwise, as in
    /// torchvision's ResNet.
    /// </summary>
    Projection,

    /// <summary>
    /// <c>main(x) + x</c> when the block keeps the input's shape (stride 1, same channels), no
    /// residual connection otherwise, as in MobileNetV2's inverted residual.
    /// </summary>
    IdentityIfSameShape,
}

/// <summary>Where a network gets its Channel Equilibrium (CE) blocks.</summary>
public enum Placement
{
    /// <summary>Exactly the <see cref="CEAttribute"/>, <see cref="BDAttribute"/> and <see cref="AIIAttribute"/> layers written in the declarations.</summary>
    Explicit,

    /// <summary>No CE, BD or AII at all, even where written: the plain baseline of the same declarations.</summary>
    None,

    /// <summary>
    /// The paper's placement rule. In a block that declares CE, BD or AII layers, those; in a block
    /// that declares none, one CE after the last normalization that is directly followed by an
    /// activation, per chain (the main path, counting the activation after the residual addition,
    /// or each branch). In the network's own layers (stem, plain sequences, head), a CE after every
    /// normalization directly followed by an activation, unless the network declares CE layers of
    /// its own or sets <see cref="NetworkAttribute.CEInOwnLayers"/> to false. Blocks beyond
    /// <see cref="NetworkAttribute.CEBlocks"/> get none.
    /// </summary>
    Paper,
}

/// <summary>How the generated constructor initializes parameters.</summary>
public enum Init
{
    /// <summary>
    /// torchvision's ResNet scheme: convolutions Kaiming-normal (fan out, ReLU gain) with zero bias,
    /// normalization weight 1 and bias 0, linear layers as PyTorch creates them unless
    /// <see cref="LinearAttribute.InitStd"/> is set.
    /// </summary>
    TorchVision,

    /// <summary>The framework's default initialization of every layer (torchvision's ShuffleNetV2).</summary>
    Default,
}

/// <summary>Values that a layer takes from its block's constructor rather than from a literal.</summary>
public static class From
{
    /// <summary>
    /// The stride the stage passes to the block (<see cref="StageAttribute.Stride"/> for a stage's
    /// first block, 1 for the others): <c>[Conv(3, Stride = From.Parameter)]</c>.
    /// </summary>
    public const int Parameter = -1;
}
