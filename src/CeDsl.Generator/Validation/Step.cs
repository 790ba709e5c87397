using CeDsl.Generator.Model;

namespace CeDsl.Generator.Validation;

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

/// <summary>One entry of the flattened layer sequence while a class is being validated.</summary>
internal sealed class Step
{
    public Step(LayerSpec spec, int chain, string container)
    {
        Spec = spec;
        Chain = chain;
        Container = container;
    }

    public LayerSpec Spec { get; set; }

    public LayerKind Kind => Spec.Kind;

    /// <summary>Steps of one chain follow each other without a split, branch, merge or shuffle in between.</summary>
    public int Chain { get; set; }

    /// <summary>The section's container path at this step ("" for the class itself).</summary>
    public string Container { get; set; }

    public Site Site { get; set; }

    /// <summary>Removed by Placement.None.</summary>
    public bool Dropped { get; set; }

    /// <summary>For a CE inserted by the paper's rule: the normalization it follows.</summary>
    public Step? After { get; set; }

    /// <summary>For a CE inserted by the paper's rule: its group size and reduction as C# (a number, or a constructor parameter).</summary>
    public string? PlacedGroupSize { get; set; }

    public string? PlacedReduction { get; set; }

    /// <summary>The container the layer's path lives in (set while naming).</summary>
    public string Parent { get; set; } = "";

    /// <summary>The full submodule path, such as "layer1.0" or "downsample.1" (null for dataflow markers).</summary>
    public string? Path { get; set; }

    /// <summary>Set when this step reuses a stateless module declared by an earlier step.</summary>
    public bool Shared { get; set; }

    /// <summary>For branch markers: the branch's container name.</summary>
    public string? BranchName { get; set; }

    /// <summary>For block instances.</summary>
    public BlockInstance? Instance { get; set; }

    public LeafPlan? Leaf { get; set; }

    public bool IsModule => Kind is not (LayerKind.Split or LayerKind.Concat or LayerKind.Shuffle or LayerKind.Add or LayerKind.Branch);

    public string Label => Kind switch
    {
        LayerKind.Norm => Spec.Norm.ToString(),
        LayerKind.Block => Instance?.Block.Type.Name ?? "Block",
        _ => Kind.ToString(),
    };

    public string Describe() => Path is null ? "[" + Label + "]" : Label + " '" + Path + "'";
}

/// <summary>A block created by a stage.</summary>
internal sealed record BlockInstance(BlockDeclaration Block, int Stage, int Index, long Stride, PlacementKind Placement);
