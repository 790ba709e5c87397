using CeDsl.Generator.Model;

namespace CeDsl.Generator.Passes;

/// <summary>Whether a layer exists in every instance of its class.</summary>
internal enum Site
{
    /// <summary>Always constructed.</summary>
    Always,

    /// <summary>A CE, BD or AII written in a block: constructed unless the placement is None.</summary>
    Explicit,

    /// <summary>A CE the paper's rule puts in a block: constructed only with Placement.Paper.</summary>
    Rule,
}

/// <summary>
/// One entry of a class's flattened layer sequence, as the passes see it: the layer, where it sits
/// (chain, section container), and what each pass adds (placement site, name, block instance).
/// </summary>
/// <param name="Id">Its position when the structure was built; stays the same when placement inserts layers.</param>
/// <param name="Spec">The layer.</param>
/// <param name="Chain">Steps of one chain follow each other without a split, branch, merge, shuffle or stage in between.</param>
/// <param name="Container">The section's container path ("" for the class itself).</param>
internal sealed record Step(int Id, LayerSpec Spec, int Chain, string Container)
{
    public LayerKind Kind => Spec.Kind;

    /// <summary>The layer sits in the network's stem section.</summary>
    public bool InStem { get; init; }

    public Site Site { get; init; }

    /// <summary>For a CE the paper's rule inserts: the <see cref="Id"/> of the normalization it follows, and its group size and reduction.</summary>
    public int? After { get; init; }

    public PlacedCe? Placed { get; init; }

    /// <summary>For a branch marker: the branch's container name.</summary>
    public string? BranchName { get; init; }

    /// <summary>For a block instance of a stage.</summary>
    public BlockInstance? Instance { get; init; }

    /// <summary>The container the layer's path lives in (set by naming).</summary>
    public string Parent { get; init; } = "";

    /// <summary>The full submodule path, such as "layer1.0" or "downsample.1" (set by naming; null for dataflow markers).</summary>
    public string? Path { get; init; }

    /// <summary>This step calls a stateless module an earlier step of the class declares (torchvision's single relu).</summary>
    public bool Shared { get; init; }

    public bool IsModule => Kind is not (LayerKind.Split or LayerKind.Concat or LayerKind.Shuffle or LayerKind.Add or LayerKind.Branch);

    public bool IsChannelEquilibrium => Kind is LayerKind.CE or LayerKind.BD or LayerKind.AII;

    public bool IsActivation => Kind is LayerKind.ReLU or LayerKind.ReLU6;

    public string Label => Kind switch
    {
        LayerKind.Norm => Spec.Norm.ToString(),
        LayerKind.Block => Instance?.Block.Type.Name ?? "Block",
        _ => Kind.ToString(),
    };

    /// <summary>"CE 'layer1.0.ce'" with a path (and the prefix of the block instance, inside a network), "[CE]" without.</summary>
    public string Describe(string? prefix = null) =>
        Path is null ? "[" + Label + "]" : Label + " '" + (prefix is null ? Path : prefix + "." + Path) + "'";
}

/// <summary>The group size and reduction of a CE the paper's rule inserts: numbers in a network, constructor parameters in a block.</summary>
internal sealed record PlacedCe(Dim GroupSize, Dim Reduction);

/// <summary>A block created by a stage: its declaration, stage (1, 2, ...), index in the stage, stride and placement.</summary>
internal sealed record BlockInstance(BlockDeclaration Block, int Stage, int Index, long Stride, Placement Placement);
