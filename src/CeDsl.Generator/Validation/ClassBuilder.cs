using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using CeDsl.Generator.Model;
using CeDsl.Layers;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Validation;

/// <summary>The outcome of validating one block or network.</summary>
internal sealed class BuildResult
{
    public ClassPlan? Plan { get; set; }

    public List<DiagnosticInfo> Diagnostics { get; } = new();

    /// <summary>Numeric checks that depend on the sizes (re-run per stage for blocks).</summary>
    public List<Check> Checks { get; } = new();

    public Shape? Output { get; set; }

    public bool UsesStride { get; set; }

    public bool HasPlacement { get; set; }

    public bool HasRuleSites { get; set; }

    public bool HasErrors => Diagnostics.Exists(d => d.IsError);
}

/// <summary>
/// Turns a block's or network's attribute sequence into a <see cref="ClassPlan"/>: structure
/// (sections, branches, residual), CE placement, PyTorch-style names, shape inference and checks.
/// </summary>
internal sealed partial class ClassBuilder
{
    private static readonly HashSet<LayerKind> CeFamily = new() { LayerKind.CE, LayerKind.BD, LayerKind.AII };

    private readonly TypeRef type;
    private readonly LocationInfo? classLocation;
    private readonly bool isNetwork;
    private readonly BlockDeclaration? block;
    private readonly NetworkDeclaration? network;
    private readonly Func<BlockDeclaration, BuildResult>? buildBlock;
    private readonly BuildResult result = new();
    private readonly List<Step> steps = new();

    private ClassBuilder(TypeRef type, LocationInfo? location, BlockDeclaration? block, NetworkDeclaration? network, Func<BlockDeclaration, BuildResult>? buildBlock)
    {
        this.type = type;
        classLocation = location;
        this.block = block;
        this.network = network;
        isNetwork = network is not null;
        this.buildBlock = buildBlock;
    }

    private string ClassKind => isNetwork ? "network" : "block";

    public static BuildResult BuildBlock(BlockDeclaration declaration)
    {
        var builder = new ClassBuilder(declaration.Type, declaration.Location, declaration, null, null);
        builder.Run(declaration.Layers);
        return builder.result;
    }

    /// <param name="buildBlock">Validates a block named by a stage (memoized by the caller).</param>
    public static BuildResult BuildNetwork(NetworkDeclaration declaration, Func<BlockDeclaration, BuildResult> buildBlock)
    {
        var builder = new ClassBuilder(declaration.Type, declaration.Location, null, declaration, buildBlock);
        builder.Run(declaration.Layers);
        return builder.result;
    }

    private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments) =>
        result.Diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? classLocation, arguments));

    private void Run(EquatableArray<LayerSpec> layers)
    {
        var input = isNetwork ? ParseInput() : Shape.Map(Dim.Var(Dim.InChannels), Dim.Var(Dim.Height), Dim.Var(Dim.WidthSpatial));
        if (isNetwork && network!.Classes <= 0)
            Report(D.InvalidValue, classLocation, $"Classes of network '{type.Name}' must be positive (got {network.Classes})");
        if (isNetwork && (network!.CEGroupSize <= 0 || network.StemCEGroupSize <= 0 || network.CEReduction <= 0 || network.CEBlocks < 0))
            Report(D.InvalidValue, classLocation, $"CEGroupSize, StemCEGroupSize and CEReduction of network '{type.Name}' must be positive and CEBlocks not negative");

        BuildStructure(layers);
        CheckCeNeighbours();
        Place();
        Name();
        if (result.HasErrors || input is null) return;

        var output = Infer(input);
        if (output is null || result.HasErrors) return;
        result.Output = output;

        var environment = new Dictionary<string, long>();
        foreach (var check in result.Checks)
        {
            if (check.Run(environment) is { } diagnostic) result.Diagnostics.Add(diagnostic);
        }
        if (result.HasErrors) return;

        result.Plan = BuildPlan(input, output);
    }

    private Shape? ParseInput()
    {
        var text = network!.Input ?? "";
        var parts = text.Split('x');
        var values = new long[parts.Length];
        bool valid = parts.Length == 3;
        for (int i = 0; valid && i < parts.Length; i++)
        {
            valid = long.TryParse(parts[i].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) && values[i] > 0;
        }
        if (!valid)
        {
            Report(D.MalformedInput, classLocation, text);
            return null;
        }
        return Shape.Map(values[0], values[1], values[2]);
    }

    // ---------------------------------------------------------------- structure

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

    private void BuildStructure(EquatableArray<LayerSpec> layers)
    {
        int chain = 0;
        string container = "";
        bool inStem = false, seenStage = false, seenHead = false;
        int stageCount = 0, branchCount = 0, blockCount = 0;
        Group? group = null;
        var branchNames = new HashSet<string>(System.StringComparer.Ordinal);
        var residual = block?.Residual ?? ShortcutKind.None;

        void Add(LayerSpec spec) => steps.Add(new Step(spec with { InStem = inStem }, chain, container));

        bool NotInGroup(LayerSpec spec)
        {
            if (group is null) return true;
            Report(D.InvalidStructure, spec.Location, $"[{spec.Kind}] cannot appear between [{group.Marker.Kind}] and its [Concat]");
            return false;
        }

        foreach (var spec in layers)
        {
            switch (spec.Kind)
            {
                case LayerKind.Stem:
                case LayerKind.Head:
                    if (!isNetwork)
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
                    if (container.Length != 0 && group is null)
                    {
                        Report(D.InvalidStructure, spec.Location, $"[Branch] cannot be inside the container '{container}': a Sequential cannot fork; branches are members of the {ClassKind} itself");
                        break;
                    }
                    if (group is null)
                    {
                        group = new Group(spec, isSplit: false, container);
                    }
                    else if (group.IsSplit && group.Branches >= 1)
                    {
                        Report(D.InvalidStructure, spec.Location, "after [Split], a single branch reads the second half; close it with [Concat] first");
                        break;
                    }
                    if (residual != ShortcutKind.None)
                        Report(D.InvalidStructure, spec.Location, "a residual block cannot contain branches; put the branches in a block without a shortcut");
                    EndBranch(spec);
                    group.Branches++;
                    branchCount++;
                    chain++;
                    var branchName = spec.Name ?? "branch" + branchCount.ToString(CultureInfo.InvariantCulture);
                    if (!branchNames.Add(branchName))
                        Report(D.DuplicateName, spec.Location, branchName, type.Name);
                    container = branchName;
                    steps.Add(new Step(spec, chain, "") { BranchName = branchName });
                    break;

                case LayerKind.Split:
                    if (!NotInGroup(spec)) break;
                    if (residual != ShortcutKind.None)
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
                    if (isNetwork)
                    {
                        Report(D.InvalidStructure, spec.Location, "[Add] is the residual addition of a block; a network has no shortcut of its own");
                        break;
                    }
                    if (residual == ShortcutKind.None)
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
                    if (!isNetwork)
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
                    AddStage(spec, stageCount, ref blockCount, chain);
                    container = "";
                    chain++;
                    break;

                default:
                    Add(spec);
                    break;
            }
        }

        if (group is not null)
            Report(D.InvalidStructure, group.Marker.Location, $"[{group.Marker.Kind}] is not closed by a [Concat]");

        if (isNetwork && !seenHead && !steps.Exists(s => s.Kind == LayerKind.Linear))
        {
            // torchvision's head: avgpool, flatten, fc.
            chain++;
            container = "";
            inStem = false;
            Add(new LayerSpec(LayerKind.GlobalAvgPool, classLocation, null));
            Add(new LayerSpec(LayerKind.Flatten, classLocation, null));
            Add(new LayerSpec(LayerKind.Linear, classLocation, null) { Bias = true });
        }

        if (!isNetwork && !steps.Exists(s => s.IsModule))
            Report(D.InvalidStructure, classLocation, $"block '{type.Name}' declares no layers");

        void EndBranch(LayerSpec at)
        {
            if (steps.Count > 0 && steps[steps.Count - 1].Kind == LayerKind.Branch)
                Report(D.InvalidStructure, at.Location, $"branch '{steps[steps.Count - 1].BranchName}' is empty");
        }
    }

    private void AddStage(LayerSpec spec, int stageIndex, ref int blockCount, int chain)
    {
        var stage = spec.Stage!;
        bool valid = true;
        if (stage.Blocks <= 0) { Report(D.InvalidValue, spec.Location, $"Blocks of stage {stageIndex} must be positive (got {stage.Blocks})"); valid = false; }
        if (stage.Out <= 0) { Report(D.InvalidValue, spec.Location, $"Out of stage {stageIndex} must be positive (got {stage.Out})"); valid = false; }
        if (stage.Stride <= 0) { Report(D.InvalidValue, spec.Location, $"Stride of stage {stageIndex} must be positive (got {stage.Stride})"); valid = false; }
        if (stage.Block.Declaration is null) { Report(D.NotABlock, spec.Location, stage.Block.DisplayName); valid = false; }
        if (stage.First is { Declaration: null }) { Report(D.NotABlock, spec.Location, stage.First.DisplayName); valid = false; }
        if (!valid) return;

        var container = spec.Name ?? "layer" + stageIndex.ToString(CultureInfo.InvariantCulture);
        for (int i = 0; i < stage.Blocks; i++)
        {
            var declaration = i == 0 && stage.First is not null ? stage.First.Declaration! : stage.Block.Declaration!;
            var placement = network!.Placement;
            if (placement == PlacementKind.Paper && network.CEBlocks > 0 && blockCount >= network.CEBlocks) placement = PlacementKind.None;
            blockCount++;
            var instance = new BlockInstance(declaration, stageIndex, i, i == 0 ? stage.Stride : 1, placement);
            steps.Add(new Step(new LayerSpec(LayerKind.Block, spec.Location, null) { Stage = stage }, chain, container) { Instance = instance });
        }
    }

    // ---------------------------------------------------------------- CE neighbourhood and placement

    /// <summary>The layer directly before step i in its chain, or null.</summary>
    private Step? Previous(int i) =>
        i > 0 && steps[i - 1].IsModule && !steps[i - 1].Dropped && steps[i - 1].Chain == steps[i].Chain ? steps[i - 1] : null;

    /// <summary>The layer directly after step i: across [Add], the first layer applied to the sum.</summary>
    private Step? Next(int i)
    {
        int j = i + 1;
        if (j < steps.Count && steps[j].Kind == LayerKind.Add) j++;
        else if (j < steps.Count && steps[j].Chain != steps[i].Chain) return null;
        return j < steps.Count && steps[j].IsModule && !steps[j].Dropped ? steps[j] : null;
    }

    private string DescribeBefore(int i)
    {
        if (i == 0) return $"the {ClassKind}'s input";
        var previous = steps[i - 1];
        return previous.Kind switch
        {
            LayerKind.Branch => $"the start of branch '{previous.BranchName}'",
            LayerKind.Block => "a stage",
            _ => "[" + previous.Label + "]",
        };
    }

    private string DescribeAfter(int i)
    {
        int j = i + 1;
        if (j < steps.Count && steps[j].Kind == LayerKind.Add)
            return j + 1 < steps.Count ? "the residual addition and then [" + steps[j + 1].Label + "]" : "the residual addition";
        if (j >= steps.Count) return $"the end of the {ClassKind}";
        return steps[j].Kind switch
        {
            LayerKind.Branch => $"the start of branch '{steps[j].BranchName}'",
            LayerKind.Block => "a stage",
            _ => "[" + steps[j].Label + "]",
        };
    }

    private static bool IsActivation(Step? step) => step is { Kind: LayerKind.ReLU or LayerKind.ReLU6 };

    private void CheckCeNeighbours()
    {
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (!CeFamily.Contains(step.Kind)) continue;
            if (Previous(i) is not { Kind: LayerKind.Norm })
                Report(D.NotAfterNorm, step.Spec.Location, step.Label, DescribeBefore(i));
            if (step.Kind == LayerKind.CE && !IsActivation(Next(i)))
                Report(D.CENotBeforeActivation, step.Spec.Location, step.Label, DescribeAfter(i));
        }
    }

    private void Place()
    {
        var explicitCe = steps.Where(s => CeFamily.Contains(s.Kind)).ToList();
        if (isNetwork)
        {
            switch (network!.Placement)
            {
                case PlacementKind.None:
                    foreach (var step in explicitCe) step.Dropped = true;
                    break;
                case PlacementKind.Paper when explicitCe.Count == 0 && network.CEInOwnLayers:
                    for (int i = steps.Count - 1; i >= 0; i--)
                    {
                        var step = steps[i];
                        if (step.Kind == LayerKind.Norm && IsActivation(Next(i)))
                            InsertCe(i, step.Spec.InStem ? network.StemCEGroupSize.ToString(CultureInfo.InvariantCulture) : network.CEGroupSize.ToString(CultureInfo.InvariantCulture),
                                network.CEReduction.ToString(CultureInfo.InvariantCulture), Site.Always);
                    }
                    break;
            }
            return;
        }

        if (explicitCe.Count > 0)
        {
            foreach (var step in explicitCe) step.Site = Site.Explicit;
            result.HasPlacement = true;
            return;
        }

        // The paper's rule for a block: per chain, after the last norm directly followed by an activation.
        var lastPerChain = new Dictionary<int, int>();
        for (int i = 0; i < steps.Count; i++)
        {
            if (steps[i].Kind == LayerKind.Norm && IsActivation(Next(i))) lastPerChain[steps[i].Chain] = i;
        }
        foreach (var i in lastPerChain.Values.OrderByDescending(i => i))
            InsertCe(i, "ceGroupSize", "ceReduction", Site.Rule);
        if (lastPerChain.Count > 0)
        {
            result.HasPlacement = true;
            result.HasRuleSites = true;
        }
    }

    private void InsertCe(int normIndex, string groupSize, string reduction, Site site)
    {
        var norm = steps[normIndex];
        var spec = new LayerSpec(LayerKind.CE, norm.Spec.Location, null) { Placed = true, InStem = norm.Spec.InStem };
        steps.Insert(normIndex + 1, new Step(spec, norm.Chain, norm.Container) { Site = site, After = norm, PlacedGroupSize = groupSize, PlacedReduction = reduction });
    }
}
