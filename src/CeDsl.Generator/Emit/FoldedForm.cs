using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Emit;

/// <summary>What a folding step of the generated <c>FoldFrom</c> does (see CeDsl.Folding.ModuleFolder).</summary>
internal enum FoldStepKind { Chain, Copy, Prune, Block, Nested }

/// <summary>One statement of <c>FoldFrom</c>: paths of the trained module, the same in the folded one.</summary>
internal sealed record FoldStep(FoldStepKind Kind, string Path, string? Norm = null, string? Block = null, string? BlockType = null);

/// <summary>
/// The inference-only form of a <see cref="ClassPlan"/> (channel-equilibrium-semantics.md,
/// "Inference folding"): every <c>conv -> norm [-> CE | BD | AII | SE]</c> chain (consecutive in
/// forward or in a Sequential) becomes a convolution with bias when the norm is a BatchNorm (the
/// norm is gone), a kept GroupNorm / InstanceNorm / LayerNorm otherwise, and the block folded
/// (BD into the convolution after a BatchNorm, a 1x1 grouped convolution after a kept norm; CE and
/// AII into their folded modules; SE as it is). A pruning-only selective convolution (K = 0) becomes a
/// PrunedSelectiveConv2d that folding shrinks to the trained layer's open channels. Blocks of stages
/// become their Folded classes; every other module is kept. Derived from the plan alone, so the emitter stays a function of the plan.
/// </summary>
internal sealed class FoldedForm
{
    private readonly Dictionary<string, (string Type, string Factory)> replaced = new(System.StringComparer.Ordinal);
    private readonly HashSet<string> removed = new(System.StringComparer.Ordinal);
    private readonly Dictionary<string, (MemberPlan Norm, MemberPlan? Block)> chains = new(System.StringComparer.Ordinal);
    private readonly HashSet<string> chainNorms = new(System.StringComparer.Ordinal);
    private readonly HashSet<string> chainBlocks = new(System.StringComparer.Ordinal);

    private FoldedForm(ClassPlan plan)
    {
        var roots = plan.Members.ToDictionary(m => m.Name, System.StringComparer.Ordinal);
        var calls = plan.Forward.Select(op => op.Kind == OpKind.Call && roots.TryGetValue(op.Target, out var member) ? member : null).ToList();
        FindChains(calls);
        foreach (var member in plan.Members) FindChainsIn(member);

        Members = plan.Members.Select(Transform).Where(m => m is not null).Select(m => m!).ToList();
        foreach (var member in plan.Members) CollectSteps(member);
    }

    public static FoldedForm Of(ClassPlan plan) => new(plan);

    /// <summary>The folded module tree: the plan's minus the folded-away norms and BD layers.</summary>
    public IReadOnlyList<MemberPlan> Members { get; }

    /// <summary>True when a pruning-only selective convolution (K = 0) becomes a PrunedSelectiveConv2d.</summary>
    public bool Prunes { get; private set; }

    /// <summary>The statements of <c>FoldFrom</c>, in member order.</summary>
    public List<FoldStep> Steps { get; } = new();

    /// <summary>True when the member at <paramref name="path"/> no longer exists in the folded form.</summary>
    public bool IsRemoved(string path) => removed.Contains(path);

    /// <summary>The folded module type and factory of a leaf, when they differ from the trained one's.</summary>
    public bool TryGetReplacement(MemberPlan member, out string type, out string factory)
    {
        if (replaced.TryGetValue(member.Path, out var replacement))
        {
            (type, factory) = replacement;
            return true;
        }
        type = factory = "";
        return false;
    }

    private void FindChainsIn(MemberPlan container)
    {
        if (!container.IsContainer) return;
        FindChains(container.Children.Select(c => (MemberPlan?)c).ToList());
        foreach (var child in container.Children) FindChainsIn(child);
    }

    /// <summary>Finds conv -> norm [-> block] in a sequence of modules applied one after the other (null: anything else).</summary>
    private void FindChains(List<MemberPlan?> sequence)
    {
        for (int i = 0; i + 1 < sequence.Count; i++)
        {
            if (sequence[i] is not { Leaf: { Kind: LayerKind.Conv }, Condition: null } conv || chains.ContainsKey(conv.Path)) continue;
            if (sequence[i + 1] is not { Leaf: { Kind: LayerKind.Norm, Flat: false }, Condition: null } norm) continue;
            var block = i + 2 < sequence.Count && sequence[i + 2] is { Leaf.Kind: LayerKind.CE or LayerKind.BD or LayerKind.AII or LayerKind.SE } b ? b : null;
            AddChain(conv, norm, block);
        }
    }

    private void AddChain(MemberPlan conv, MemberPlan norm, MemberPlan? block)
    {
        chains[conv.Path] = (norm, block);
        chainNorms.Add(norm.Path);
        if (block is not null) chainBlocks.Add(block.Path);
        bool batchNorm = norm.Leaf!.Norm == NormKind.BN;
        if (batchNorm) removed.Add(norm.Path);

        var convLeaf = conv.Leaf!;
        string groups = convLeaf.Groups.ToCSharp();
        if (block is { Leaf: { Kind: LayerKind.BD } bd })
        {
            if (batchNorm)
            {
                removed.Add(block.Path);
                if (convLeaf.Groups != Dim.Of(1))
                {
                    var decorrelated = $"InferenceFolding.DecorrelatedGroups({convLeaf.Out.ToCSharp()}, {groups}, {bd.GroupSize})";
                    // A BD that only some placements create changes the grouping only where it exists.
                    groups = block.Condition is { } condition ? $"{condition} ? {decorrelated} : {groups}" : decorrelated;
                }
            }
            else
            {
                // running_wm as a bias-free 1x1 convolution with one group per BD group: the grouping
                // DecorrelatedGroups gives for an identity map with C groups, C / d.
                var channels = bd.In.ToCSharp();
                var map = bd with { Kind = LayerKind.Conv, Out = bd.In, Kernel = 1, Stride = Dim.Of(1), Padding = 0, Bias = false };
                replaced[block.Path] = ("Conv2d", ClassEmitter.Convolution(map, $"InferenceFolding.DecorrelatedGroups({channels}, {channels}, {bd.GroupSize})"));
            }
        }
        replaced[conv.Path] = ("Conv2d", ClassEmitter.Convolution(convLeaf with { Bias = convLeaf.Bias || batchNorm }, groups));
    }

    private MemberPlan? Transform(MemberPlan member)
    {
        if (removed.Contains(member.Path)) return null;
        if (member.Leaf is { } leaf)
        {
            if (!replaced.ContainsKey(member.Path))
            {
                switch (leaf.Kind)
                {
                    case LayerKind.CE:
                        replaced[member.Path] = ("FoldedChannelEquilibrium", $"new FoldedChannelEquilibrium({leaf.In.ToCSharp()}, groupSize: {leaf.GroupSize}, reduction: {leaf.Reduction}, {InPlace(member)}{ClassEmitter.DeviceArguments})");
                        break;
                    case LayerKind.AII:
                        replaced[member.Path] = ("FoldedAdaptiveInstanceInverse", $"new FoldedAdaptiveInstanceInverse({leaf.In.ToCSharp()}, reduction: {leaf.Reduction}, {InPlace(member)}{ClassEmitter.DeviceArguments})");
                        break;
                    case LayerKind.SelectConv when leaf.K == 0:
                        // Pruning only: the closed channels can be removed (re-allocated channels of K > 0 read shifted inputs and stay).
                        replaced[member.Path] = ("PrunedSelectiveConv2d", ClassEmitter.SelectiveConvolution("PrunedSelectiveConv2d", leaf));
                        Prunes = true;
                        break;
                    case LayerKind.Block:
                        replaced[member.Path] = (leaf.BlockType + ".Folded", $"new {leaf.BlockType}.Folded({leaf.BlockArguments}, {ClassEmitter.DeviceArguments})");
                        break;
                }
            }
            return member;
        }
        return member with { Children = member.Children.Select(Transform).Where(c => c is not null).Select(c => c!).ToEquatableArray() };
    }

    /// <summary>
    /// A folded CE or AII that ends a chain reads the output of the chain's convolution (or kept norm),
    /// which nothing else reads, so it may write its own output over it instead of allocating another
    /// activation.
    /// </summary>
    private string InPlace(MemberPlan member) =>
        chainBlocks.Contains(member.Path) ? "inplace: true, " : "";

    private void CollectSteps(MemberPlan member)
    {
        if (member.Leaf is not { } leaf)
        {
            foreach (var child in member.Children) CollectSteps(child);
            return;
        }
        if (chains.TryGetValue(member.Path, out var chain))
        {
            Steps.Add(new FoldStep(FoldStepKind.Chain, member.Path, chain.Norm.Path, chain.Block?.Path));
            return;
        }
        if (chainNorms.Contains(member.Path) || chainBlocks.Contains(member.Path)) return;
        switch (leaf.Kind)
        {
            case LayerKind.CE:
            case LayerKind.AII:
                Steps.Add(new FoldStep(FoldStepKind.Block, member.Path));
                break;
            case LayerKind.Block:
                Steps.Add(new FoldStep(FoldStepKind.Nested, member.Path, BlockType: leaf.BlockType));
                break;
            case LayerKind.SelectConv when leaf.K == 0:
                Steps.Add(new FoldStep(FoldStepKind.Prune, member.Path));
                break;
            case LayerKind.Conv:
            case LayerKind.SelectConv:
            case LayerKind.Norm:
            case LayerKind.BD:
            case LayerKind.SE:
            case LayerKind.Linear:
                Steps.Add(new FoldStep(FoldStepKind.Copy, member.Path));
                break;
        }
    }
}
