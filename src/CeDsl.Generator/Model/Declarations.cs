namespace CeDsl.Generator.Model;

/// <summary>The DSL's attributes, as the parser recognizes them.</summary>
internal enum LayerKind
{
    Conv,
    SelectConv,
    Norm,
    CE,
    BD,
    AII,
    SE,
    ReLU,
    ReLU6,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    Flatten,
    Linear,
    Dropout,
    Split,
    Concat,
    Shuffle,
    Add,
    Stem,
    Head,
    Seq,
    Branch,
    Stage,

    // Not attributes: what the generator adds (block instances of stages, projection shortcuts).
    Block,
}

/// <summary>Mirrors CeDsl.Kind.</summary>
internal enum NormKind { BN, GN, IN, LN }

/// <summary>Mirrors CeDsl.Shortcut.</summary>
internal enum ShortcutKind { None, Identity, Projection, IdentityIfSameShape }

/// <summary>Mirrors CeDsl.Placement.</summary>
internal enum PlacementKind { Explicit, None, Paper }

/// <summary>Mirrors CeDsl.Init.</summary>
internal enum InitKind { TorchVision, Default }

/// <summary>The declared type the generator completes.</summary>
internal sealed record TypeRef(string Namespace, string Name)
{
    public string FullName => Namespace.Length == 0 ? Name : Namespace + "." + Name;

    public string GlobalName => "global::" + FullName;
}

/// <summary>
/// One attribute of a block or network, in source order, with every value the attribute can carry
/// (defaults already applied, see <see cref="Parsing.Defaults"/>).
/// </summary>
internal sealed record LayerSpec(LayerKind Kind, LocationInfo? Location, string? Name)
{
    public int Kernel { get; init; }
    public int Stride { get; init; } = 1;
    public int Padding { get; init; } = -1;
    public int Groups { get; init; } = 1;
    public bool Depthwise { get; init; }
    public int Out { get; init; }
    public int Expand { get; init; }
    public int ExpandInput { get; init; }
    public int In { get; init; }
    public bool Bias { get; init; }
    public NormKind Norm { get; init; }
    public double Eps { get; init; } = 1e-5;
    public double Momentum { get; init; } = 0.1;
    public int GroupSize { get; init; } = 16;
    public int R { get; init; } = 4;
    public int Iterations { get; init; } = 3;
    public double P { get; init; } = 0.5;
    public double InitStd { get; init; }
    public int Size { get; init; } = 1;
    public double Gamma { get; init; } = 0.001;
    public int K { get; init; } = 3;
    public int NMax { get; init; }

    /// <summary>Set for <see cref="LayerKind.Stage"/>.</summary>
    public StageSpec? Stage { get; init; }

    /// <summary>True for layers that <see cref="PlacementKind.Paper"/> inserted.</summary>
    public bool Placed { get; init; }

    /// <summary>True when the layer sits in the network's stem section.</summary>
    public bool InStem { get; init; }
}

/// <summary>A stage: the resolved block types and the stage's values.</summary>
internal sealed record StageSpec(int Blocks, int Out, int Stride, BlockReference Block, BlockReference? First);

/// <summary>A type named by a stage; <see cref="Declaration"/> is null when it is not a block.</summary>
internal sealed record BlockReference(string DisplayName, string GlobalName, BlockDeclaration? Declaration);

/// <summary>A class marked [Block], as parsed.</summary>
internal sealed record BlockDeclaration(
    TypeRef Type,
    LocationInfo? Location,
    ShortcutKind Residual,
    InitKind Init,
    EquatableArray<LayerSpec> Layers,
    EquatableArray<string> MemberNames,
    EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>A class marked [Network], as parsed (with the blocks its stages name).</summary>
internal sealed record NetworkDeclaration(
    TypeRef Type,
    LocationInfo? Location,
    string Input,
    int Classes,
    PlacementKind Placement,
    int CEGroupSize,
    int StemCEGroupSize,
    int CEReduction,
    int CEBlocks,
    bool CEInOwnLayers,
    InitKind Init,
    EquatableArray<LayerSpec> Layers,
    EquatableArray<string> MemberNames,
    EquatableArray<DiagnosticInfo> Diagnostics);
