using System.Collections.Generic;
using System.Linq;

namespace CeDsl.Generator.Model;

/// <summary>
/// The inference-only form of a trained class's plan (docs/semantics/channel-equilibrium.md, "Inference
/// folding"), as a plan: every <c>conv -&gt; norm [-&gt; CE | BD | AII | SE]</c> chain (consecutive in forward
/// or in a Sequential) becomes a convolution with bias when the norm is a BatchNorm (the norm is gone), a
/// kept GroupNorm / InstanceNorm / LayerNorm otherwise, and the block folded (BD into the convolution after
/// a BatchNorm, a 1x1 grouped convolution after a kept norm; CE and AII into their folded modules, in place
/// at the end of a chain; SE as it is). A pruning-only selective convolution (K = 0) becomes a pruned one
/// that folding shrinks to the trained layer's open channels. Blocks of stages become their Folded
/// classes; every other module is kept. Nothing is initialized: <c>FoldFrom</c> fills every parameter.
/// </summary>
internal static class Folding
{
    public static ClassPlan Fold(ClassPlan trained) => new Folder(trained).Run();

    private sealed class Folder
    {
        private readonly ClassPlan trained;
        private readonly Dictionary<string, LayerPlan> replaced = new(System.StringComparer.Ordinal);
        private readonly HashSet<string> removed = new(System.StringComparer.Ordinal);
        private readonly Dictionary<string, (MemberPlan Norm, MemberPlan? Block)> chains = new(System.StringComparer.Ordinal);
        private readonly HashSet<string> chainNorms = new(System.StringComparer.Ordinal);
        private readonly HashSet<string> chainBlocks = new(System.StringComparer.Ordinal);
        private readonly List<FoldStep> steps = new();
        private bool prunes;

        public Folder(ClassPlan trained) => this.trained = trained;

        public ClassPlan Run()
        {
            var roots = trained.Members.ToDictionary(m => m.Name, System.StringComparer.Ordinal);
            FindChains(trained.Forward.Select(op => op.Kind == OpKind.Call && roots.TryGetValue(op.Target, out var member) ? member : null).ToList());
            foreach (var member in trained.Members) FindChainsIn(member);

            var members = trained.Members.Select(Transform).Where(m => m is not null).Select(m => m!).ToEquatableArray();
            foreach (var member in trained.Members) CollectSteps(member);
            var forward = trained.Forward.Where(op => !(op.Kind == OpKind.Call && removed.Contains(op.Target))).ToEquatableArray();
            return new ClassPlan(trained.Type.Nested("Folded"), trained.Signature, members, forward)
            {
                FoldsFrom = new FoldingPlan(trained.Type, prunes, steps.ToEquatableArray()),
            };
        }

        private void FindChainsIn(MemberPlan container)
        {
            if (!container.IsContainer) return;
            FindChains(container.Children.Select(c => (MemberPlan?)c).ToList());
            foreach (var child in container.Children) FindChainsIn(child);
        }

        private static bool Always(MemberPlan member) => member.Exists == Condition.True;

        /// <summary>Finds conv -&gt; norm [-&gt; block] in a sequence of modules applied one after the other (null: anything else).</summary>
        private void FindChains(List<MemberPlan?> sequence)
        {
            for (int i = 0; i + 1 < sequence.Count; i++)
            {
                if (sequence[i] is not { Leaf: ConvPlan } conv || !Always(conv) || chains.ContainsKey(conv.Path)) continue;
                if (sequence[i + 1] is not { Leaf: NormPlan { Module: not (NormModule.BatchNorm1d or NormModule.LayerNorm) } } norm || !Always(norm)) continue;
                var block = i + 2 < sequence.Count && sequence[i + 2] is { Leaf: ChannelEquilibriumPlan or BatchDecorrelationPlan or AdaptiveInstanceInversePlan or SqueezeExcitationPlan } b ? b : null;
                AddChain(conv, norm, block);
            }
        }

        private void AddChain(MemberPlan conv, MemberPlan norm, MemberPlan? block)
        {
            chains[conv.Path] = (norm, block);
            chainNorms.Add(norm.Path);
            if (block is not null) chainBlocks.Add(block.Path);
            bool batchNorm = ((NormPlan)norm.Leaf!).Module == NormModule.BatchNorm2d;
            if (batchNorm) removed.Add(norm.Path);

            var convolution = (ConvPlan)conv.Leaf!;
            var groups = convolution.Groups;
            if (block is { Leaf: BatchDecorrelationPlan bd })
            {
                if (batchNorm)
                {
                    removed.Add(block.Path);
                    if (groups != Dim.Of(1))
                    {
                        // A BD that only some placements create changes the grouping only where it exists.
                        groups = Dim.If(block.Exists, Dim.DecorrelatedGroups(convolution.Out, groups, bd.GroupSize), groups);
                    }
                }
                else
                {
                    // running_wm as a bias-free 1x1 convolution with one group per BD group: the grouping
                    // DecorrelatedGroups gives for an identity map with C groups, C / d.
                    replaced[block.Path] = new ConvPlan(bd.Channels, bd.Channels, 1, 1, 0, Dim.DecorrelatedGroups(bd.Channels, bd.Channels, bd.GroupSize), Bias: false);
                }
            }
            replaced[conv.Path] = convolution with { Bias = convolution.Bias || batchNorm, Groups = groups };
        }

        private MemberPlan? Transform(MemberPlan member)
        {
            if (removed.Contains(member.Path)) return null;
            if (member.Leaf is { } leaf)
            {
                var folded = replaced.TryGetValue(member.Path, out var replacement) ? replacement : Fold(member, leaf);
                return member with { Leaf = folded, Init = Initialization.Framework };
            }
            return member with { Children = member.Children.Select(Transform).Where(c => c is not null).Select(c => c!).ToEquatableArray() };
        }

        /// <summary>
        /// A folded CE or AII that ends a chain reads the output of the chain's convolution (or kept norm),
        /// which nothing else reads, so it writes its output over it instead of allocating another activation.
        /// </summary>
        private LayerPlan Fold(MemberPlan member, LayerPlan leaf)
        {
            switch (leaf)
            {
                case ChannelEquilibriumPlan ce:
                    return new FoldedChannelEquilibriumPlan(ce.Channels, ce.GroupSize, ce.Reduction, InPlace: chainBlocks.Contains(member.Path));
                case AdaptiveInstanceInversePlan aii:
                    return new FoldedAdaptiveInstanceInversePlan(aii.Channels, aii.Reduction, InPlace: chainBlocks.Contains(member.Path));
                case SelectiveConvPlan { K: 0 } selective:
                    // Pruning only: the closed channels can be removed (re-allocated channels of K > 0 read shifted inputs and stay).
                    prunes = true;
                    return new PrunedSelectiveConvPlan(selective.In, selective.Out, selective.Kernel, selective.Stride, selective.Padding, selective.Dropout);
                case BlockPlan block:
                    return block with { Folded = true };
                default:
                    return leaf;
            }
        }

        private void CollectSteps(MemberPlan member)
        {
            if (member.Leaf is not { } leaf)
            {
                foreach (var child in member.Children) CollectSteps(child);
                return;
            }
            if (chains.TryGetValue(member.Path, out var chain))
            {
                steps.Add(new FoldStep(FoldStepKind.Chain, member.Path, chain.Norm.Path, chain.Block?.Path));
                return;
            }
            if (chainNorms.Contains(member.Path) || chainBlocks.Contains(member.Path)) return;
            switch (leaf)
            {
                case ChannelEquilibriumPlan or AdaptiveInstanceInversePlan:
                    steps.Add(new FoldStep(FoldStepKind.Block, member.Path));
                    break;
                case BlockPlan block:
                    steps.Add(new FoldStep(FoldStepKind.Nested, member.Path, BlockType: block.Type));
                    break;
                case SelectiveConvPlan { K: 0 }:
                    steps.Add(new FoldStep(FoldStepKind.Prune, member.Path));
                    break;
                case ConvPlan or SelectiveConvPlan or NormPlan or BatchDecorrelationPlan or SqueezeExcitationPlan or LinearPlan:
                    steps.Add(new FoldStep(FoldStepKind.Copy, member.Path));
                    break;
            }
        }
    }
}
