namespace CeDsl.Generator.Model;

/// <summary>The validated model of one generated class: what the emitter writes, nothing else.</summary>
internal sealed record ClassPlan(
    TypeRef Type,
    InitKind Init,
    EquatableArray<MemberPlan> Members,
    EquatableArray<ForwardOp> Forward,
    EquatableArray<string> Layout,
    BlockSignature? Block,
    NetworkSignature? Network)
{
    public bool UsesShuffle
    {
        get
        {
            foreach (var op in Forward)
                if (op.Kind == OpKind.Shuffle) return true;
            return false;
        }
    }
}

/// <summary>What a block's constructor takes and how its shortcut behaves.</summary>
internal sealed record BlockSignature(
    bool UsesStride,
    bool HasPlacement,
    bool HasRuleSites,
    Dim OutputChannels,
    ShortcutKind Residual,
    string? ResidualCondition,
    string? ShapeCheckCondition,
    Dim ResidualChannels);

/// <summary>
/// What a network's constructor takes: <c>classes</c> when the last linear layer has the network's
/// classes, <c>inChannels</c> when only convolutions read the input's channels.
/// </summary>
internal sealed record NetworkSignature(long InputChannels, long InputHeight, long InputWidth, int Classes, bool UsesClasses, bool UsesInputChannels);

/// <summary>
/// A node of the module tree: a leaf layer or a Sequential container. At the root, the name is
/// the field name; below, the key in the parent Sequential.
/// </summary>
internal sealed record MemberPlan(string Name, string Path, LeafPlan? Leaf, EquatableArray<MemberPlan> Children, string? Condition)
{
    public bool IsContainer => Leaf is null;
}

/// <summary>How a leaf layer is constructed.</summary>
internal sealed record LeafPlan(LayerKind Kind)
{
    public NormKind Norm { get; init; }
    public bool Flat { get; init; }
    public Dim In { get; init; } = Dim.Of(0);
    public Dim Out { get; init; } = Dim.Of(0);
    public int Kernel { get; init; }
    public Dim Stride { get; init; } = Dim.Of(1);
    public int Padding { get; init; }
    public Dim Groups { get; init; } = Dim.Of(1);
    public bool Bias { get; init; }
    public double Eps { get; init; } = 1e-5;
    public double Momentum { get; init; } = 0.1;
    public string GroupSize { get; init; } = "16";
    public string Reduction { get; init; } = "4";
    public int Iterations { get; init; } = 3;
    public double P { get; init; }
    public double InitStd { get; init; }
    public int Size { get; init; } = 1;
    public bool UsesClasses { get; init; }
    public double Gamma { get; init; }
    public int K { get; init; }
    public int NMax { get; init; }

    /// <summary>For block instances: the block type and its constructor arguments (before device and dtype).</summary>
    public string? BlockType { get; init; }
    public string? BlockArguments { get; init; }
}

internal enum OpKind { Call, Split, Concat, Branches, Shuffle, Residual }

/// <summary>One statement of forward.</summary>
internal sealed record ForwardOp(OpKind Kind, string Target, EquatableArray<string> Targets, int Groups, bool Optional);
