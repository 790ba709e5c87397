using System;

namespace CeDsl;

/// <summary>
/// Marks where the following layers go. Without a name they are direct members of the class
/// (named like PyTorch attributes: <c>conv1</c>, <c>bn1</c>, ...); with a name they are members of
/// a <c>Sequential</c> of that name with keys "0", "1", ... (a dotted name nests containers).
/// </summary>
public abstract class SectionAttribute : Attribute
{
    /// <summary>Creates a section marker.</summary>
    protected SectionAttribute(string? name) => Name = name;

    /// <summary>The container of the following layers, or null for the class itself.</summary>
    public string? Name { get; set; }
}

/// <summary>
/// The network's stem: the layers before the first <see cref="StageAttribute"/>. CE inserted here by
/// <see cref="Placement.Paper"/> uses <see cref="NetworkAttribute.StemCEGroupSize"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class StemAttribute : SectionAttribute
{
    /// <summary>A stem whose layers are members of the network (torchvision's ResNet).</summary>
    public StemAttribute() : base(null) { }
}

/// <summary>
/// The network's head: the layers after the last stage. A <see cref="LinearAttribute"/> without
/// <c>Out</c> gets the network's <see cref="NetworkAttribute.Classes"/>; the head must end with
/// <c>Classes</c> features.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class HeadAttribute : SectionAttribute
{
    /// <summary>A head whose layers are members of the network.</summary>
    public HeadAttribute() : base(null) { }
}

/// <summary>
/// Puts the following layers into the named container (torchvision's <c>features</c>,
/// <c>classifier</c>, <c>conv</c>), or, without a name, back among the class's own members.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SeqAttribute : SectionAttribute
{
    /// <summary>Puts the following layers among the class's own members (named like PyTorch attributes).</summary>
    public SeqAttribute() : base(null) { }

    /// <summary>Puts the following layers into the container <paramref name="name"/>.</summary>
    public SeqAttribute(string name) : base(name) { }
}

/// <summary>
/// Starts a parallel branch: the following layers, up to the next <see cref="BranchAttribute"/> or
/// <see cref="ConcatAttribute"/>, form a <c>Sequential</c> (default name <c>branch1</c>, <c>branch2</c>, ...).
/// Consecutive branches read the same input and a <see cref="ConcatAttribute"/> joins their outputs
/// along the channels. After a <see cref="SplitAttribute"/>, a single branch reads the second half.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class BranchAttribute : SectionAttribute
{
    /// <summary>A branch named <c>branch1</c>, <c>branch2</c>, ... by position.</summary>
    public BranchAttribute() : base(null) { }

    /// <summary>A branch named <paramref name="name"/>.</summary>
    public BranchAttribute(string name) : base(name) { }
}
