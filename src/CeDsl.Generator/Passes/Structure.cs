using System.Collections.Generic;
using System.Globalization;
using CeDsl.Generator.Model;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Passes;

/// <summary>The sequence of steps of a class, and the layers of its projection shortcut (a block with <c>Shortcut.Projection</c>).</summary>
internal sealed record StructureResult(EquatableArray<Step> Steps, EquatableArray<Step> Shortcut, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>
/// The second pass: the attribute sequence as a flat sequence of steps: sections and their containers,
/// chains, branches and splits, a network's stages (one step per block instance, with its stride and
/// placement) and the head torchvision's networks end with when none is declared, a block's residual
/// addition and its projection's layers.
/// </summary>
internal static class Structure
{
    public static StructureResult Build(ClassDeclaration declaration) => new Builder(declaration).Run();

    private sealed class Group
    {
        public Group(LayerSpec marker, bool isSplit, string baseContainer)
        {
            Marker = marker;
            IsSplit = isSplit;
            BaseContainer = baseContainer;
        }

        public LayerSpec Marker { get; }
        public bool IsSplit { get; }
        public string BaseContainer { get; }
        public int Branches { get; set; }
    }

    /// <summary>The walk over the attributes (its state lives for one call of <see cref="Build"/>).</summary>
    private sealed class Builder
    {
        private readonly ClassDeclaration declaration;
        private readonly NetworkDeclaration? network;
        private readonly Shortcut residual;
        private readonly List<Step> steps = new();
        private readonly List<DiagnosticInfo> diagnostics = new();
        private readonly HashSet<string> branchNames = new(System.StringComparer.Ordinal);
        private int chain, stageCount, branchCount, blockCount;
        private string container = "";
        private bool inStem, seenStage, seenHead;
        private Group? group;

        public Builder(ClassDeclaration declaration)
        {
            this.declaration = declaration;
            network = declaration as NetworkDeclaration;
            residual = declaration is BlockDeclaration block ? block.Residual : Shortcut.None;
        }

        private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments) =>
            diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? declaration.Location, arguments));

        private void Add(LayerSpec spec) => steps.Add(new Step(steps.Count, spec, chain, container) { InStem = inStem });

        private bool NotInGroup(LayerSpec spec)
        {
            if (group is null) return true;
            Report(D.InvalidStructure, spec.Location, $"[{spec.Kind}] cannot appear between [{group.Marker.Kind}] and its [Concat]");
            return false;
        }

        public StructureResult Run()
        {
            foreach (var spec in declaration.Layers) Visit(spec);

            if (group is not null)
                Report(D.InvalidStructure, group.Marker.Location, $"[{group.Marker.Kind}] is not closed by a [Concat]");

            if (network is not null && !seenHead && !steps.Exists(s => s.Kind == LayerKind.Linear))
            {
                // torchvision's head: avgpool, flatten, fc.
                chain++;
                container = "";
                inStem = false;
                Add(LayerSpecs.Implicit(new GlobalAvgPoolAttribute(), LayerKind.GlobalAvgPool, declaration.Location));
                Add(LayerSpecs.Implicit(new FlattenAttribute(), LayerKind.Flatten, declaration.Location));
                Add(LayerSpecs.Implicit(new LinearAttribute(), LayerKind.Linear, declaration.Location));
            }

            if (network is null && !steps.Exists(s => s.IsModule))
                Report(D.InvalidStructure, declaration.Location, $"block '{declaration.Type.Name}' declares no layers");

            return new StructureResult(steps.ToEquatableArray(), ProjectionLayers().ToEquatableArray(), diagnostics.ToEquatableArray());
        }

        /// <summary>torchvision's projection: downsample.0, a 1x1 convolution, and downsample.1, like the main path's last norm before the addition.</summary>
        private IEnumerable<Step> ProjectionLayers()
        {
            if (residual != Shortcut.Projection) yield break;
            // Negative ids: the placement pass numbers the layers it inserts after the main path's.
            yield return new Step(-1, LayerSpecs.Implicit(new ConvAttribute(1) { Padding = 0 }, LayerKind.Conv, declaration.Location), -1, "downsample");
            var add = steps.FindIndex(s => s.Kind == LayerKind.Add);
            for (int i = (add < 0 ? steps.Count : add) - 1; i >= 0; i--)
            {
                if (steps[i].Kind != LayerKind.Norm) continue;
                yield return new Step(-2, steps[i].Spec with { Name = null, Implicit = true }, -1, "downsample");
                yield break;
            }
        }

        private void Visit(LayerSpec spec)
        {
            switch (spec.Kind)
            {
                case LayerKind.Stem:
                case LayerKind.Head:
                    if (network is null)
                    {
                        Report(D.InvalidStructure, spec.Location, $"[{spec.Kind}] belongs to networks; a block is a single sequence of layers");
                        break;
                    }
                    if (!NotInGroup(spec)) break;
                    if (spec.Kind == LayerKind.Stem && (seenStage || seenHead))
                        Report(D.InvalidStructure, spec.Location, "[Stem] must come before the stages and the head");
                    container = spec.Name ?? "";
                    inStem = spec.Kind == LayerKind.Stem;
                    seenHead |= spec.Kind == LayerKind.Head;
                    break;

                case LayerKind.Seq:
                    if (!NotInGroup(spec)) break;
                    container = spec.Name ?? "";
                    inStem = false;
                    break;

                case LayerKind.Branch:
                    Branch(spec);
                    break;

                case LayerKind.Split:
                    if (!NotInGroup(spec)) break;
                    if (residual != Shortcut.None)
                        Report(D.InvalidStructure, spec.Location, "a residual block cannot contain [Split]; put it in a block without a shortcut");
                    group = new Group(spec, isSplit: true, container);
                    chain++;
                    Add(spec);
                    break;

                case LayerKind.Concat:
                    if (group is null)
                    {
                        Report(D.InvalidStructure, spec.Location, "[Concat] needs a preceding [Split] or [Branch]");
                        break;
                    }
                    if (!group.IsSplit && group.Branches < 2)
                        Report(D.InvalidStructure, spec.Location, "[Concat] of branches needs at least two [Branch] sections");
                    EndBranch(spec);
                    container = group.BaseContainer;
                    group = null;
                    chain++;
                    Add(spec);
                    chain++;
                    break;

                case LayerKind.Shuffle:
                    if (!NotInGroup(spec)) break;
                    chain++;
                    Add(spec);
                    chain++;
                    break;

                case LayerKind.Add:
                    if (network is not null)
                    {
                        Report(D.InvalidStructure, spec.Location, "[Add] is the residual addition of a block; a network has no shortcut of its own");
                        break;
                    }
                    if (residual == Shortcut.None)
                    {
                        Report(D.InvalidStructure, spec.Location, "[Add] needs a block with a residual shortcut ([Block(Residual = Shortcut.Projection)] or another Shortcut)");
                        break;
                    }
                    if (!NotInGroup(spec)) break;
                    if (!steps.Exists(s => s.IsModule))
                        Report(D.InvalidStructure, spec.Location, "the block's main path before [Add] is empty");
                    chain++;
                    Add(spec);
                    break;

                case LayerKind.Stage:
                    if (network is null)
                    {
                        Report(D.InvalidStructure, spec.Location, "[Stage] belongs to networks; blocks cannot contain stages");
                        break;
                    }
                    if (!NotInGroup(spec)) break;
                    if (seenHead)
                        Report(D.InvalidStructure, spec.Location, "[Stage] cannot follow [Head]");
                    seenStage = true;
                    inStem = false;
                    stageCount++;
                    chain++;
                    Stage(spec, network);
                    container = "";
                    chain++;
                    break;

                default:
                    Add(spec);
                    break;
            }
        }

        private void Branch(LayerSpec spec)
        {
            if (container.Length != 0 && group is null)
            {
                Report(D.InvalidStructure, spec.Location, $"[Branch] cannot be inside the container '{container}': a Sequential cannot fork; branches are members of the {declaration.KindName} itself");
                return;
            }
            if (group is null)
            {
                group = new Group(spec, isSplit: false, container);
            }
            else if (group.IsSplit && group.Branches >= 1)
            {
                Report(D.InvalidStructure, spec.Location, "after [Split], a single branch reads the second half; close it with [Concat] first");
                return;
            }
            if (residual != Shortcut.None)
                Report(D.InvalidStructure, spec.Location, "a residual block cannot contain branches; put the branches in a block without a shortcut");
            EndBranch(spec);
            group.Branches++;
            branchCount++;
            chain++;
            var name = spec.Name ?? "branch" + branchCount.ToString(CultureInfo.InvariantCulture);
            if (!branchNames.Add(name))
                Report(D.DuplicateName, spec.Location, name, declaration.Type.Name);
            container = name;
            steps.Add(new Step(steps.Count, spec, chain, "") { BranchName = name });
        }

        private void EndBranch(LayerSpec at)
        {
            if (steps.Count > 0 && steps[steps.Count - 1].Kind == LayerKind.Branch)
                Report(D.InvalidStructure, at.Location, $"branch '{steps[steps.Count - 1].BranchName}' is empty");
        }

        /// <summary>The stage's block instances in its container (layer1, layer2, ... by default).</summary>
        private void Stage(LayerSpec spec, NetworkDeclaration network)
        {
            var stage = spec.Stage!;
            bool valid = stage.Blocks > 0 && stage.Out > 0 && stage.Stride > 0; // the values pass reports the others
            if (stage.Block.Declaration is null) { Report(D.NotABlock, spec.Location, stage.Block.DisplayName); valid = false; }
            if (stage.First is { Declaration: null }) { Report(D.NotABlock, spec.Location, stage.First.DisplayName); valid = false; }
            if (!valid) return;

            var stageContainer = spec.Name ?? "layer" + stageCount.ToString(CultureInfo.InvariantCulture);
            for (int i = 0; i < stage.Blocks; i++)
            {
                var block = i == 0 && stage.First is { Declaration: { } first } ? first : stage.Block.Declaration!;
                var placement = network.Placement;
                if (placement == Placement.Paper && network.CEBlocks > 0 && blockCount >= network.CEBlocks) placement = Placement.None;
                blockCount++;
                var instance = new BlockInstance(block, stageCount, i, i == 0 ? stage.Stride : 1, placement);
                steps.Add(new Step(steps.Count, new LayerSpec(LayerKind.Block, spec.Location, null) { Stage = stage }, chain, stageContainer) { Instance = instance });
            }
        }
    }
}
