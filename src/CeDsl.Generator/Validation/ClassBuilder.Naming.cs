using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using CeDsl.Generator.Model;
using Microsoft.CodeAnalysis.CSharp;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Validation;

/// <summary>
/// Submodule names. Members of the class itself follow PyTorch's conventions (conv1, bn1, relu,
/// maxpool, ce/ce1, fc, layer1, downsample); members of a container get the keys "0", "1", ...
/// except CE, BD and AII, named ce/bd/aii (ce1, ce2, ... when several), so that the other keys do
/// not depend on the placement. Stateless layers of the class itself share one module per kind and settings (torchvision's
/// single relu).
/// </summary>
internal sealed partial class ClassBuilder
{
    /// <summary>Names the generated class uses itself, or that TorchSharp's Module already defines.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal)
    {
        "torch", "nn", "TorchSharp", "CeDsl", "System", "global",
        "InputShape", "ChannelShuffle", "useResidual", "forward", "call", "Fold", "Folded", "FoldFrom", "createFolded",
        "name", "training", "handle", "train", "eval", "to", "cpu", "cuda", "apply", "zero_grad",
        "parameters", "named_parameters", "buffers", "named_buffers", "children", "named_children",
        "modules", "named_modules", "state_dict", "load_state_dict", "load", "save", "register_module",
        "register_buffer", "register_parameter", "get_submodule", "RegisterComponents", "Dispose", "GetName",
    };

    private sealed class Node
    {
        public Node(string name, string path, Step? leaf)
        {
            Name = name;
            Path = path;
            Leaf = leaf;
        }

        public string Name { get; }
        public string Path { get; }
        public Step? Leaf { get; }
        public List<Node> Children { get; } = new();
        public Dictionary<string, Node> ByName { get; } = new(StringComparer.Ordinal);

        public int NextIndex()
        {
            int next = 0;
            foreach (var child in Children)
            {
                if (int.TryParse(child.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var index)) next = Math.Max(next, index + 1);
            }
            return next;
        }

        public Node Add(string name, Step? leaf)
        {
            var node = new Node(name, Path.Length == 0 ? name : Path + "." + name, leaf);
            Children.Add(node);
            ByName[name] = node;
            return node;
        }
    }

    private readonly Node root = new("", "", null);

    private static string Join(string container, string name) => container.Length == 0 ? name : container + "." + name;

    private static bool IsStateless(LayerKind kind) =>
        kind is LayerKind.ReLU or LayerKind.ReLU6 or LayerKind.MaxPool or LayerKind.AvgPool or LayerKind.GlobalAvgPool or LayerKind.Flatten or LayerKind.Dropout;

    private static LayerSpec Settings(LayerSpec spec) => spec with { Location = null, Name = null, InStem = false, Placed = false };

    private static string? NumberedPrefix(Step step) => step.Kind switch
    {
        LayerKind.CE => "ce",
        LayerKind.BD => "bd",
        LayerKind.AII => "aii",
        LayerKind.SE => "se",
        LayerKind.Linear => "fc",
        _ => null,
    };

    private static string StatelessName(LayerKind kind) => kind switch
    {
        LayerKind.ReLU => "relu",
        LayerKind.ReLU6 => "relu6",
        LayerKind.MaxPool => "maxpool",
        LayerKind.AvgPool or LayerKind.GlobalAvgPool => "avgpool",
        LayerKind.Flatten => "flatten",
        _ => "dropout",
    };

    private void Name()
    {
        var modules = steps.Where(s => s.IsModule && !s.Dropped).ToList();
        for (int i = 0; i < modules.Count; i++)
        {
            var step = modules[i];
            if (step.After is not null) step.Parent = step.After.Parent;
            else step.Parent = DeclaredParent(step) ?? EnclosingContainer(modules, i) ?? step.Container;
        }

        // How many default-named layers of each numbered kind share a parent: one is "ce", several "ce1", "ce2", ...
        var counts = new Dictionary<(string, string), int>();
        foreach (var step in modules)
        {
            if (step.Spec.Name is not null || NumberedPrefix(step) is not { } prefix) continue;
            if (step.Parent.Length != 0 && !CeFamily.Contains(step.Kind)) continue;
            var key = (step.Parent, prefix);
            counts[key] = counts.TryGetValue(key, out var n) ? n + 1 : 1;
        }

        var counters = new Dictionary<(string, string), int>();
        string Numbered(string parent, string prefix, bool alwaysNumber)
        {
            var key = (parent, prefix);
            if (!alwaysNumber && counts.TryGetValue(key, out var total) && total == 1) return prefix;
            counters[key] = counters.TryGetValue(key, out var n) ? n + 1 : 1;
            return prefix + counters[key].ToString(CultureInfo.InvariantCulture);
        }

        foreach (var step in modules)
        {
            if (step.Spec.Name is { } explicitName && step.Instance is null)
            {
                var path = Join(step.Container, explicitName);
                if (!CheckName(path, step)) continue;
                Register(step, path, allowShare: true);
                continue;
            }

            var parent = Container(step.Parent, step);
            if (parent is null) continue;
            string name;
            if (step.Instance is not null || (step.Parent.Length != 0 && !CeFamily.Contains(step.Kind)))
            {
                name = parent.NextIndex().ToString(CultureInfo.InvariantCulture);
            }
            else if (step.Parent.Length != 0)
            {
                // CE, BD and AII in a container never take an index: the other keys stay the same whatever the placement.
                name = Numbered(step.Parent, NumberedPrefix(step)!, alwaysNumber: false);
            }
            else if (step.Kind == LayerKind.Conv)
            {
                name = Numbered("", "conv", alwaysNumber: true);
            }
            else if (step.Kind == LayerKind.SelectConv)
            {
                name = Numbered("", "sconv", alwaysNumber: true);
            }
            else if (step.Kind == LayerKind.Norm)
            {
                name = Numbered("", "bn", alwaysNumber: true);
            }
            else if (NumberedPrefix(step) is { } prefix)
            {
                // The reference names the stem's CE "ce1" and a block's single CE "ce".
                name = Numbered("", prefix, alwaysNumber: isNetwork && prefix != "fc");
            }
            else
            {
                name = StatelessName(step.Kind);
                for (int suffix = 2; root.ByName.TryGetValue(name, out var existing) && !CanShare(existing, step); suffix++)
                    name = StatelessName(step.Kind) + suffix.ToString(CultureInfo.InvariantCulture);
            }

            var full = Join(step.Parent, name);
            if (step.Parent.Length == 0 && !CheckName(full, step)) continue;
            Register(step, full, allowShare: true);
        }

        if (block?.Residual == ShortcutKind.Projection)
        {
            // torchvision's projection shortcut: downsample.0 (1x1 conv), downsample.1 (the block's norm).
            var at = new LayerSpec(LayerKind.Conv, classLocation, null);
            downsample.Add(new Step(at, -1, ""));
            // Its norm is like the main path's last norm before the addition.
            var addIndex = steps.FindIndex(s => s.Kind == LayerKind.Add);
            residualNorm = steps.Take(addIndex < 0 ? steps.Count : addIndex).LastOrDefault(s => s.Kind == LayerKind.Norm && !s.Dropped)?.Spec;
            if (residualNorm is not null)
                downsample.Add(new Step(at with { Kind = LayerKind.Norm }, -1, ""));
            for (int i = 0; i < downsample.Count; i++)
                Register(downsample[i], "downsample." + i.ToString(CultureInfo.InvariantCulture), allowShare: false);
        }
    }

    /// <summary>The parent an explicit name gives (e.g. "conv.1" for "1.0" in [Seq("conv")]); null for an unnamed layer.</summary>
    private static string? DeclaredParent(Step step)
    {
        if (step.Spec.Name is not { } name || step.Instance is not null) return null;
        var full = Join(step.Container, name);
        int dot = full.LastIndexOf('.');
        return dot < 0 ? "" : full.Substring(0, dot);
    }

    /// <summary>
    /// The nested container an unnamed layer is declared inside of: the one of the layers just before and
    /// just after it (e.g. "conv.1" between "1.1" and "1.2"). Its members run in one go, so a layer left
    /// outside would run after all of them: CE, BD and AII (never numbered) join the container, any other
    /// layer is reported, since the index it would take can collide with the names declared after it.
    /// </summary>
    private string? EnclosingContainer(List<Step> modules, int index)
    {
        var step = modules[index];
        if (step.Instance is not null || index == 0 || index + 1 >= modules.Count) return null;
        var previous = modules[index - 1];
        var next = modules[index + 1];
        if (previous.Container != step.Container || next.Container != step.Container) return null;
        var container = previous.Parent;
        if (container.Length <= step.Container.Length || DeclaredParent(next) is not { } nextParent
            || !(nextParent == container || nextParent.StartsWith(container + ".", StringComparison.Ordinal)))
            return null;
        if (CeFamily.Contains(step.Kind)) return container;
        var local = container.Substring(step.Container.Length == 0 ? 0 : step.Container.Length + 1);
        Report(D.InvalidStructure, step.Spec.Location,
            $"{step.Describe()} has no name but is declared inside container '{container}', before '{Join(next.Container, next.Spec.Name!)}', " +
            $"but would run after that container's layers; name it inside the container (Name = \"{local}.<name>\")");
        return null;
    }

    private readonly List<Step> downsample = new();
    private LayerSpec? residualNorm;

    private bool CanShare(Node existing, Step step) =>
        existing.Leaf is { } leaf && existing.Path.IndexOf('.') < 0 && IsStateless(step.Kind) && leaf.Site == step.Site
        && Settings(leaf.Spec) == Settings(step.Spec);

    private bool CheckName(string path, Step step)
    {
        var segments = path.Split('.');
        string? problem = null;
        if (segments.Any(s => s.Length == 0 || s.Any(c => !(char.IsLetterOrDigit(c) && c < 128 || c == '_'))))
            problem = "each part of a name is letters, digits and underscores, separated by dots";
        else if (!SyntaxFacts.IsValidIdentifier(segments[0]) && SyntaxFacts.GetKeywordKind(segments[0]) == Microsoft.CodeAnalysis.CSharp.SyntaxKind.None)
            problem = $"'{segments[0]}' is a member of the generated class and must be a C# identifier";
        else if (Reserved.Contains(segments[0]) || segments[0] == type.Name || MemberNames.Contains(segments[0]))
            problem = $"'{segments[0]}' is already a member of '{type.Name}' or of TorchSharp's Module";
        if (problem is null) return true;
        Report(D.InvalidName, step.Spec.Location, path, problem);
        return false;
    }

    private HashSet<string> MemberNames => memberNames ??= new HashSet<string>(block?.MemberNames ?? network!.MemberNames, StringComparer.Ordinal);

    private HashSet<string>? memberNames;

    /// <summary>The container node at <paramref name="path"/>, created if needed; null (reported) when a layer already has that name.</summary>
    private Node? Container(string path, Step step)
    {
        var node = root;
        if (path.Length == 0) return node;
        foreach (var segment in path.Split('.'))
        {
            if (node.ByName.TryGetValue(segment, out var child))
            {
                if (child.Leaf is not null)
                {
                    Report(D.DuplicateName, step.Spec.Location, child.Path, type.Name);
                    return null;
                }
                node = child;
            }
            else
            {
                if (node == root && !CheckName(segment, step)) return null;
                node = node.Add(segment, null);
            }
        }
        return node;
    }

    private void Register(Step step, string path, bool allowShare)
    {
        int dot = path.LastIndexOf('.');
        var parent = Container(dot < 0 ? "" : path.Substring(0, dot), step);
        if (parent is null) return;
        var name = dot < 0 ? path : path.Substring(dot + 1);
        if (parent.ByName.TryGetValue(name, out var existing))
        {
            if (allowShare && parent == root && CanShare(existing, step))
            {
                step.Path = path;
                step.Shared = true;
                return;
            }
            Report(D.DuplicateName, step.Spec.Location, path, type.Name);
            return;
        }
        parent.Add(name, step);
        step.Path = path;
    }
}
