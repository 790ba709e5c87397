namespace CeDsl.Generator.Model;

/// <summary>The DSL's attributes, as the parser recognizes them, and the block instances stages create.</summary>
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

    /// <summary>Not an attribute: a block instance of a stage.</summary>
    Block,
}

/// <summary>The declared type the generator completes (<see cref="Outer"/>: the class a nested Folded class is in).</summary>
internal sealed record TypeRef(string Namespace, string Name, string? Outer = null)
{
    /// <summary>The name in its namespace: <c>CifarResNet</c>, <c>CifarResNet.Folded</c>.</summary>
    public string NestedName => Outer is null ? Name : Outer + "." + Name;

    public string FullName => Namespace.Length == 0 ? NestedName : Namespace + "." + NestedName;

    /// <summary>The nested class <paramref name="name"/> of this type.</summary>
    public TypeRef Nested(string name) => new(Namespace, name, NestedName);
}

/// <summary>
/// One attribute of a block or network, in source order, with every value the attribute carries: read
/// from an instance of the DSL's attribute class, so every default is the attribute's own.
/// </summary>
internal sealed record LayerSpec(LayerKind Kind, LocationInfo? Location, string? Name)
{
    public int Kernel { get; init; }
    public int Stride { get; init; }
    public int Padding { get; init; }
    public int Groups { get; init; }
    public bool Depthwise { get; init; }
    public int Out { get; init; }
    public int Expand { get; init; }
    public int ExpandInput { get; init; }
    public int In { get; init; }
    public bool Bias { get; init; }
    public Kind Norm { get; init; }
    public double Eps { get; init; }
    public double Momentum { get; init; }
    public int GroupSize { get; init; }
    public int R { get; init; }
    public int Iterations { get; init; }
    public double P { get; init; }
    public double InitStd { get; init; }
    public int Size { get; init; }
    public double Gamma { get; init; }
    public int K { get; init; }
    public int NMax { get; init; }

    /// <summary>Set for <see cref="LayerKind.Stage"/>.</summary>
    public StageSpec? Stage { get; init; }

    /// <summary>True for layers the generator adds (the implicit head, a projection's layers, a CE of the paper's rule): diagnostics never name them as the user's.</summary>
    public bool Implicit { get; init; }
}

/// <summary>A stage: the resolved block types and the stage's values.</summary>
internal sealed record StageSpec(int Blocks, int Out, int Stride, BlockReference Block, BlockReference? First);

/// <summary>A type named by a stage; <see cref="Declaration"/> is null when it is not a block.</summary>
internal sealed record BlockReference(string DisplayName, BlockDeclaration? Declaration);

/// <summary>A class marked [Block] or [Network], as parsed.</summary>
internal abstract record ClassDeclaration(
    TypeRef Type,
    LocationInfo? Location,
    Init Init,
    EquatableArray<LayerSpec> Layers,
    EquatableArray<string> MemberNames,
    EquatableArray<DiagnosticInfo> Diagnostics)
{
    /// <summary>"block" or "network", for messages.</summary>
    public abstract string KindName { get; }
}

/// <summary>A class marked [Block]: a main path with an optional residual shortcut, built by stages.</summary>
internal sealed record BlockDeclaration(
    TypeRef Type,
    LocationInfo? Location,
    Init Init,
    Shortcut Residual,
    EquatableArray<LayerSpec> Layers,
    EquatableArray<string> MemberNames,
    EquatableArray<DiagnosticInfo> Diagnostics) : ClassDeclaration(Type, Location, Init, Layers, MemberNames, Diagnostics)
{
    public override string KindName => "block";
}

/// <summary>A class marked [Network] (with the blocks its stages name), its values as the attribute carries them.</summary>
internal sealed record NetworkDeclaration(
    TypeRef Type,
    LocationInfo? Location,
    Init Init,
    string Input,
    int Classes,
    Placement Placement,
    int CEGroupSize,
    int StemCEGroupSize,
    int CEReduction,
    int CEBlocks,
    bool CEInOwnLayers,
    EquatableArray<LayerSpec> Layers,
    EquatableArray<string> MemberNames,
    EquatableArray<DiagnosticInfo> Diagnostics) : ClassDeclaration(Type, Location, Init, Layers, MemberNames, Diagnostics)
{
    public override string KindName => "network";
}
