using System;

namespace CeDsl;

/// <summary>
/// Splits the channels into two halves (ShuffleNetV2's channel split): the first half bypasses the
/// following layers and a <see cref="ConcatAttribute"/> puts it back in front of their output.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SplitAttribute : Attribute;

/// <summary>Concatenates along the channels: the branches' outputs, or the bypassed half of a <see cref="SplitAttribute"/> and the current output.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ConcatAttribute : Attribute;

/// <summary>Channel shuffle with <see cref="Groups"/> groups (ShuffleNetV2).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ShuffleAttribute : Attribute
{
    /// <summary>A channel shuffle with 2 groups.</summary>
    public ShuffleAttribute() { }

    /// <summary>A channel shuffle with <paramref name="groups"/> groups.</summary>
    public ShuffleAttribute(int groups) => Groups = groups;

    /// <summary>The number of groups. Default 2.</summary>
    public int Groups { get; set; } = 2;
}

/// <summary>
/// The residual addition of a block with a <see cref="BlockAttribute.Residual"/> shortcut; the
/// layers after it act on the sum (ResNet: <c>[Add] [ReLU]</c>, i.e. <c>relu(main(x) + shortcut(x))</c>).
/// Without it, the addition ends the block.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class AddAttribute : Attribute;
