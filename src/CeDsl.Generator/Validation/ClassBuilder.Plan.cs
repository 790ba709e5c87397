using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Validation;

/// <summary>From the named, inferred steps to the <see cref="ClassPlan"/> the emitter writes.</summary>
internal sealed partial class ClassBuilder
{
    private ClassPlan? BuildPlan(Shape input, Shape output)
    {
        if (blockFailed) return null;
        var forward = BuildForward();
        if (forward is null) return null;

        bool usesInputChannels = isNetwork && inputConvolutions.Count > 0 && !inputChannelsFixed;
        if (usesInputChannels)
        {
            foreach (var step in inputConvolutions)
                if (step.Leaf is { } leaf) step.Leaf = leaf with { In = Dim.Var(Dim.InChannels) };
        }

        var members = new List<MemberPlan>();
        foreach (var child in root.Children)
        {
            if (BuildMember(child) is { } member) members.Add(member);
        }

        BlockSignature? blockSignature = null;
        NetworkSignature? networkSignature = null;
        if (isNetwork)
        {
            networkSignature = new NetworkSignature(input.C.Constant!.Value, input.H.Constant!.Value, input.W.Constant!.Value, network!.Classes, usesClasses, usesInputChannels);
        }
        else
        {
            blockSignature = new BlockSignature(result.UsesStride, result.HasPlacement, result.HasRuleSites, output.C, block!.Residual, residualCondition, shapeCheckCondition, residualChannels);
        }

        return new ClassPlan(type, block?.Init ?? network!.Init, members.ToEquatableArray(), forward.ToEquatableArray(), Layout(forward).ToEquatableArray(), blockSignature, networkSignature);
    }

    private static string? SiteCondition(Site site) => site switch
    {
        Site.Explicit => "placement != Placement.None",
        Site.Rule => "placement == Placement.Paper",
        _ => null,
    };

    private MemberPlan? BuildMember(Node node)
    {
        if (node.Leaf is { } step)
            return step.Leaf is null ? null : new MemberPlan(node.Name, node.Path, step.Leaf, EquatableArray<MemberPlan>.Empty, SiteCondition(step.Site));

        string? condition = null;
        if (downsample.Count > 0 && node.Path == "downsample" && node.Children.Exists(c => c.Leaf == downsample[0]))
        {
            if (residualCondition is null or "false") return null;
            condition = residualCondition == "true" ? null : residualCondition;
        }
        var children = node.Children.Select(BuildMember).Where(m => m is not null).Select(m => m!).ToEquatableArray();
        return children.Count == 0 ? null : new MemberPlan(node.Name, node.Path, null, children, condition);
    }

    private List<ForwardOp>? BuildForward()
    {
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

        foreach (var step in steps)
        {
            if (step.Dropped) continue;
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
                    bool isContainer = root.ByName[rootName].Leaf is null;
                    if (!isContainer)
                    {
                        Emit(Op(OpKind.Call) with { Target = rootName, Optional = step.Site != Site.Always });
                        break;
                    }
                    if (open == rootName) break;
                    if (closed.Contains(rootName))
                    {
                        Report(D.InvalidStructure, step.Spec.Location,
                            $"the layers of container '{rootName}' must be consecutive, but '{step.Path}' comes after other layers or operations; a Sequential runs its members in one go");
                        return null;
                    }
                    Emit(Op(OpKind.Call) with { Target = rootName });
                    open = rootName;
                    break;
            }
        }
        if (!isNetwork && block!.Residual != ShortcutKind.None && !steps.Exists(s => s.Kind == LayerKind.Add))
            Emit(Op(OpKind.Residual));
        return ops;
    }

    private static ForwardOp Op(OpKind kind) => new(kind, "", EquatableArray<string>.Empty, 0, false);

    private string? ResidualLayout() => (block!.Residual, residualCondition) switch
    {
        (ShortcutKind.Projection, "true") => "+ downsample(input)",
        (ShortcutKind.Projection, "false") => "+ input",
        (ShortcutKind.Projection, _) => "+ input, or downsample(input) when the shape changes",
        (ShortcutKind.IdentityIfSameShape, "false") => null,
        (ShortcutKind.IdentityIfSameShape, "true") => "+ input",
        (ShortcutKind.IdentityIfSameShape, _) => "+ input when the shape is kept",
        _ => "+ input",
    };

    private IEnumerable<string> Layout(List<ForwardOp> forward)
    {
        foreach (var op in forward)
        {
            switch (op.Kind)
            {
                case OpKind.Call: yield return op.Optional ? "(" + op.Target + ")" : op.Target; break;
                case OpKind.Split: yield return "channel split"; break;
                case OpKind.Concat: yield return "concat"; break;
                case OpKind.Branches: yield return "(" + string.Join(" | ", op.Targets) + ") concat"; break;
                case OpKind.Shuffle: yield return "channel shuffle"; break;
                case OpKind.Residual:
                    if (ResidualLayout() is { } text) yield return text;
                    break;
            }
        }
    }
}
