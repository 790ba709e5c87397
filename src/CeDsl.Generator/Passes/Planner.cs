using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Passes;

/// <summary>
/// The last pass: the <see cref="ClassPlan"/> the emitter writes, from the named module tree and the sized
/// layers: members with their conditions and initialization, the statements of forward, the constructor's
/// signature, and the folded form (<see cref="Folding.Fold"/>).
/// </summary>
internal static class Planner
{
    /// <summary>What a network needs of a block it instantiates: the block's constructor and the problems of its forward, without its members and folded form.</summary>
    public static (BlockSignature Signature, EquatableArray<DiagnosticInfo> Diagnostics) Signature(
        BlockDeclaration declaration, PlacementResult placement, NamingResult named, ShapesResult shapes)
    {
        var diagnostics = new List<DiagnosticInfo>();
        Forward(declaration, named, diagnostics);
        return (BlockSignature(declaration, placement, shapes), diagnostics.ToEquatableArray());
    }

    public static (ClassPlan? Plan, EquatableArray<DiagnosticInfo> Diagnostics) Build(
        ClassDeclaration declaration, PlacementResult placement, NamingResult named, ShapesResult shapes)
    {
        var diagnostics = new List<DiagnosticInfo>();
        var layers = new Dictionary<int, LayerPlan>(shapes.Layers.Count + 2);
        foreach (var layer in shapes.Layers) layers[layer.Key] = layer.Value;
        if (shapes.Residual is { } residual)
        {
            for (int i = 0; i < residual.Projection.Count; i++) layers[named.Shortcut[i].Id] = residual.Projection[i];
        }

        var forward = Forward(declaration, named, diagnostics);
        if (forward is null) return (null, diagnostics.ToEquatableArray());

        var steps = named.Steps.Concat(named.Shortcut).ToDictionary(s => s.Id);
        var members = named.Members.Select(node => Member(node, steps, layers, declaration.Init, shapes.Residual)).Where(m => m is not null).Select(m => m!).ToEquatableArray();

        ClassSignature signature = declaration switch
        {
            NetworkDeclaration network => new NetworkSignature(shapes.Input.C.Constant!.Value, shapes.Input.H.Constant!.Value, shapes.Input.W.Constant!.Value,
                network.Classes, shapes.UsesClasses, shapes.UsesInputChannels),
            BlockDeclaration block => BlockSignature(block, placement, shapes),
            _ => throw new System.InvalidOperationException("unknown declaration " + declaration.GetType().Name),
        };

        var plan = new ClassPlan(declaration.Type, signature, members, forward.ToEquatableArray());
        return (plan with { Folded = Folding.Fold(plan) }, diagnostics.ToEquatableArray());
    }

    private static BlockSignature BlockSignature(BlockDeclaration block, PlacementResult placement, ShapesResult shapes)
    {
        var residual = shapes.Residual ?? new ResidualResult(Condition.False, Condition.False, shapes.Output.C, EquatableArray<LayerPlan>.Empty);
        return new BlockSignature(shapes.UsesStride, placement.HasPlacement, placement.HasRuleSites, PlacementDefaults(),
            shapes.Output.C, block.Residual, residual.ResidualCondition, residual.ShapeCheck, residual.ResidualChannels);
    }

    /// <summary>A block built alone takes the network attribute's defaults for its placement parameters.</summary>
    public static PlacementDefaults PlacementDefaults()
    {
        var defaults = new NetworkAttribute();
        return new PlacementDefaults(defaults.CE, defaults.CEGroupSize, defaults.CEReduction);
    }

    private static Condition Exists(Site site) => site switch
    {
        Site.Explicit => Condition.PlacementIs(Placement.None, equal: false),
        Site.Rule => Condition.PlacementIs(Placement.Paper),
        _ => Condition.True,
    };

    private static Initialization Initialize(LayerPlan layer, Init init) => layer switch
    {
        LinearPlan { InitStd: > 0 } => Initialization.Normal,
        _ when init != Init.TorchVision => Initialization.Framework,
        ConvPlan => Initialization.KaimingFanOut,
        NormPlan => Initialization.OnesAndZeros,
        _ => Initialization.Framework,
    };

    private static MemberPlan? Member(ModuleNode node, Dictionary<int, Step> steps, Dictionary<int, LayerPlan> layers, Init init, ResidualResult? residual)
    {
        if (node.StepId is { } id)
        {
            if (!layers.TryGetValue(id, out var layer)) return null;
            return new MemberPlan(node.Name, node.Path, layer, EquatableArray<MemberPlan>.Empty, Exists(steps[id].Site), Initialize(layer, init));
        }

        var exists = Condition.True;
        if (node.Path == "downsample" && node.Children.Any(c => c.StepId is < 0))
        {
            // The projection exists where the block changes the shape.
            if (residual is null || residual.ResidualCondition == Condition.False) return null;
            exists = residual.ResidualCondition;
        }
        var children = node.Children.Select(c => Member(c, steps, layers, init, residual)).Where(m => m is not null).Select(m => m!).ToEquatableArray();
        return children.Count == 0 ? null : new MemberPlan(node.Name, node.Path, null, children, exists);
    }

    private static ForwardOp Op(OpKind kind) => new(kind, "", EquatableArray<string>.Empty, 0, false);

    private static List<ForwardOp>? Forward(ClassDeclaration declaration, NamingResult named, List<DiagnosticInfo> diagnostics)
    {
        var containers = new HashSet<string>(named.Members.Where(m => m.StepId is null).Select(m => m.Name), System.StringComparer.Ordinal);
        var ops = new List<ForwardOp>();
        var closed = new HashSet<string>(System.StringComparer.Ordinal);
        string? open = null;
        List<string>? branches = null;
        bool inSplit = false;

        void Emit(ForwardOp op)
        {
            if (open is not null && !(op.Kind == OpKind.Call && op.Target == open))
            {
                closed.Add(open);
                open = null;
            }
            ops.Add(op);
        }

        foreach (var step in named.Steps)
        {
            switch (step.Kind)
            {
                case LayerKind.Split:
                    inSplit = true;
                    Emit(Op(OpKind.Split));
                    break;
                case LayerKind.Branch:
                    if (!inSplit)
                    {
                        branches ??= new List<string>();
                        branches.Add(step.BranchName!);
                    }
                    break;
                case LayerKind.Concat:
                    if (branches is not null)
                    {
                        Emit(Op(OpKind.Branches) with { Targets = branches.ToEquatableArray() });
                        branches = null;
                    }
                    else
                    {
                        Emit(Op(OpKind.Concat));
                        inSplit = false;
                    }
                    break;
                case LayerKind.Shuffle:
                    Emit(Op(OpKind.Shuffle) with { Groups = step.Spec.Groups });
                    break;
                case LayerKind.Add:
                    Emit(Op(OpKind.Residual));
                    break;
                default:
                    if (branches is not null || step.Path is null) break;
                    var rootName = step.Path.Split('.')[0];
                    if (!containers.Contains(rootName))
                    {
                        Emit(Op(OpKind.Call) with { Target = rootName, Optional = step.Site != Site.Always });
                        break;
                    }
                    if (open == rootName) break;
                    if (closed.Contains(rootName))
                    {
                        diagnostics.Add(DiagnosticInfo.Create(D.InvalidStructure, step.Spec.Location ?? declaration.Location,
                            $"the layers of container '{rootName}' must be consecutive, but '{step.Path}' comes after other layers or operations; a Sequential runs its members in one go"));
                        return null;
                    }
                    Emit(Op(OpKind.Call) with { Target = rootName });
                    open = rootName;
                    break;
            }
        }
        if (declaration is BlockDeclaration { Residual: not Shortcut.None } && !named.Steps.Any(s => s.Kind == LayerKind.Add))
            Emit(Op(OpKind.Residual));
        return ops;
    }
}
