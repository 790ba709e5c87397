using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using CeDsl.Generator.Model;
using Microsoft.CodeAnalysis.CSharp;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Passes;

/// <summary>A node of the named module tree: a container, or the leaf of the step with <see cref="StepId"/>.</summary>
internal sealed record ModuleNode(string Name, string Path, int? StepId, EquatableArray<ModuleNode> Children);

/// <summary>The steps and the projection's layers with their paths, and the module tree they form.</summary>
internal sealed record NamingResult(EquatableArray<Step> Steps, EquatableArray<Step> Shortcut, EquatableArray<ModuleNode> Members, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>
/// The fourth pass: submodule names. Members of the class itself follow PyTorch's conventions (conv1, bn1,
/// relu, maxpool, ce/ce1, fc, layer1, downsample); members of a container get the keys "0", "1", ...
/// except CE, BD and AII, named ce/bd/aii (ce1, ce2, ... when several), so that the other keys do not
/// depend on the placement. Stateless layers of the class itself share one module per kind and settings
/// (torchvision's single relu).
/// </summary>
internal static class Naming
{
    /// <summary>Names the generated class uses itself, or that TorchSharp's Module already defines.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal)
    {
        "torch", "nn", "TorchSharp", "CeDsl", "System", "global",
        "InputShape", "ChannelShuffle", "useResidual", "forward", "call", "Fold", "Folded", "FoldFrom", "createFolded",
        "Architecture", "DescribeArchitecture", "AppendArchitecture", "architecture",
        "name", "training", "handle", "train", "eval", "to", "cpu", "cuda", "apply", "zero_grad",
        "parameters", "named_parameters", "buffers", "named_buffers", "children", "named_children",
        "modules", "named_modules", "state_dict", "load_state_dict", "load", "save", "register_module",
        "register_buffer", "register_parameter", "get_submodule", "RegisterComponents", "Dispose", "GetName",
    };

    public static NamingResult Assign(ClassDeclaration declaration, EquatableArray<Step> placed, EquatableArray<Step> shortcut) =>
        new Namer(declaration).Run(placed, shortcut);

    private static string Join(string container, string name) => container.Length == 0 ? name : container + "." + name;

    private static bool IsStateless(LayerKind kind) =>
        kind is LayerKind.ReLU or LayerKind.ReLU6 or LayerKind.MaxPool or LayerKind.AvgPool or LayerKind.GlobalAvgPool or LayerKind.Flatten or LayerKind.Dropout;

    private static LayerSpec Settings(LayerSpec spec) => spec with { Location = null, Name = null, Implicit = false };

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

    /// <summary>The parent an explicit name gives (e.g. "conv.1" for "1.0" in [Seq("conv")]); null for an unnamed layer.</summary>
    private static string? DeclaredParent(Step step)
    {
        if (step.Spec.Name is not { } name || step.Instance is not null) return null;
        var full = Join(step.Container, name);
        int dot = full.LastIndexOf('.');
        return dot < 0 ? "" : full.Substring(0, dot);
    }

    /// <summary>A container while the tree is built (a leaf has no children, and allocates no collections).</summary>
    private sealed class Node
    {
        private List<Node>? children;
        private Dictionary<string, Node>? byName;

        public Node(string name, string path, Step? leaf)
        {
            Name = name;
            Path = path;
            Leaf = leaf;
        }

        public string Name { get; }
        public string Path { get; }
        public Step? Leaf { get; }

        public bool TryGetChild(string name, out Node child)
        {
            if (byName is not null && byName.TryGetValue(name, out child!)) return true;
            child = null!;
            return false;
        }

        public int NextIndex()
        {
            int next = 0;
            foreach (var child in children ?? (IEnumerable<Node>)Array.Empty<Node>())
            {
                if (int.TryParse(child.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var index)) next = Math.Max(next, index + 1);
            }
            return next;
        }

        public Node Add(string name, Step? leaf)
        {
            var node = new Node(name, Path.Length == 0 ? name : Path + "." + name, leaf);
            (children ??= new List<Node>()).Add(node);
            (byName ??= new Dictionary<string, Node>(StringComparer.Ordinal))[name] = node;
            return node;
        }

        public EquatableArray<ModuleNode> Members() =>
            children is null ? EquatableArray<ModuleNode>.Empty : children.Select(c => new ModuleNode(c.Name, c.Path, c.Leaf?.Id, c.Members())).ToEquatableArray();
    }

    /// <summary>The naming of one class (its tree lives for one call of <see cref="Assign"/>).</summary>
    private sealed class Namer
    {
        private readonly ClassDeclaration declaration;
        private readonly HashSet<string> memberNames;
        private readonly Node root = new("", "", null);
        private readonly List<DiagnosticInfo> diagnostics = new();
        private readonly Dictionary<int, Step> named = new();

        public Namer(ClassDeclaration declaration)
        {
            this.declaration = declaration;
            memberNames = new HashSet<string>(declaration.MemberNames, StringComparer.Ordinal);
        }

        private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments) =>
            diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? declaration.Location, arguments));

        public NamingResult Run(EquatableArray<Step> placed, EquatableArray<Step> shortcut)
        {
            var modules = placed.Where(s => s.IsModule).ToList();
            var parents = new Dictionary<int, string>();
            for (int i = 0; i < modules.Count; i++)
            {
                var step = modules[i];
                var parent = step.After is { } norm && parents.TryGetValue(norm, out var normParent) ? normParent
                    : DeclaredParent(step) ?? EnclosingContainer(modules, i) ?? step.Container;
                modules[i] = step with { Parent = parent };
                parents[step.Id] = parent;
            }

            // How many default-named layers of each numbered kind share a parent: one is "ce", several "ce1", "ce2", ...
            var counts = new Dictionary<(string, string), int>();
            foreach (var step in modules)
            {
                if (step.Spec.Name is not null || NumberedPrefix(step) is not { } prefix) continue;
                if (step.Parent.Length != 0 && !step.IsChannelEquilibrium) continue;
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
                    if (CheckName(path, step)) Register(step, path, allowShare: true);
                    continue;
                }

                var parent = Container(step.Parent, step);
                if (parent is null) continue;
                string name;
                if (step.Instance is not null || (step.Parent.Length != 0 && !step.IsChannelEquilibrium))
                    name = parent.NextIndex().ToString(CultureInfo.InvariantCulture);
                else if (step.Parent.Length != 0)
                    // CE, BD and AII in a container never take an index: the other keys stay the same whatever the placement.
                    name = Numbered(step.Parent, NumberedPrefix(step)!, alwaysNumber: false);
                else if (step.Kind == LayerKind.Conv)
                    name = Numbered("", "conv", alwaysNumber: true);
                else if (step.Kind == LayerKind.SelectConv)
                    name = Numbered("", "sconv", alwaysNumber: true);
                else if (step.Kind == LayerKind.Norm)
                    name = Numbered("", "bn", alwaysNumber: true);
                else if (NumberedPrefix(step) is { } prefix)
                    // The reference names the stem's CE "ce1" and a block's single CE "ce".
                    name = Numbered("", prefix, alwaysNumber: declaration is NetworkDeclaration && prefix != "fc");
                else
                {
                    name = StatelessName(step.Kind);
                    for (int suffix = 2; root.TryGetChild(name, out var existing) && !CanShare(existing, step); suffix++)
                        name = StatelessName(step.Kind) + suffix.ToString(CultureInfo.InvariantCulture);
                }

                var full = Join(step.Parent, name);
                if (step.Parent.Length != 0 || CheckName(full, step)) Register(step, full, allowShare: true);
            }

            var shortcutSteps = new List<Step>();
            for (int i = 0; i < shortcut.Count; i++)
                shortcutSteps.Add(Register(shortcut[i], "downsample." + i.ToString(CultureInfo.InvariantCulture), allowShare: false) ?? shortcut[i]);

            var steps = placed.Select(s => named.TryGetValue(s.Id, out var n) ? n : s).ToEquatableArray();
            return new NamingResult(steps, shortcutSteps.ToEquatableArray(), root.Members(), diagnostics.ToEquatableArray());
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
            if (step.IsChannelEquilibrium) return container;
            var local = container.Substring(step.Container.Length == 0 ? 0 : step.Container.Length + 1);
            Report(D.InvalidStructure, step.Spec.Location,
                $"{step.Describe()} has no name but is declared inside container '{container}', before '{Join(next.Container, next.Spec.Name!)}', " +
                $"but would run after that container's layers; name it inside the container (Name = \"{local}.<name>\")");
            return null;
        }

        private bool CanShare(Node existing, Step step) =>
            existing.Leaf is { } leaf && existing.Path.IndexOf('.') < 0 && IsStateless(step.Kind) && leaf.Site == step.Site
            && Settings(leaf.Spec) == Settings(step.Spec);

        private bool CheckName(string path, Step step)
        {
            var segments = path.Split('.');
            string? problem = null;
            if (segments.Any(s => s.Length == 0 || s.Any(c => !(char.IsLetterOrDigit(c) && c < 128 || c == '_'))))
                problem = "each part of a name is letters, digits and underscores, separated by dots";
            else if (!SyntaxFacts.IsValidIdentifier(segments[0]) && SyntaxFacts.GetKeywordKind(segments[0]) == SyntaxKind.None)
                problem = $"'{segments[0]}' is a member of the generated class and must be a C# identifier";
            else if (Reserved.Contains(segments[0]) || segments[0] == declaration.Type.Name || memberNames.Contains(segments[0]))
                problem = $"'{segments[0]}' is already a member of '{declaration.Type.Name}' or of TorchSharp's Module";
            if (problem is null) return true;
            Report(D.InvalidName, step.Spec.Location, path, problem);
            return false;
        }

        /// <summary>The container node at <paramref name="path"/>, created if needed; null (reported) when a layer already has that name.</summary>
        private Node? Container(string path, Step step)
        {
            var node = root;
            if (path.Length == 0) return node;
            foreach (var segment in path.Split('.'))
            {
                if (node.TryGetChild(segment, out var child))
                {
                    if (child.Leaf is not null)
                    {
                        Report(D.DuplicateName, step.Spec.Location, child.Path, declaration.Type.Name);
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

        /// <summary>Gives the step its path (a new leaf, or a shared stateless module); null when the name is taken.</summary>
        private Step? Register(Step step, string path, bool allowShare)
        {
            int dot = path.LastIndexOf('.');
            var parent = Container(dot < 0 ? "" : path.Substring(0, dot), step);
            if (parent is null) return null;
            var name = dot < 0 ? path : path.Substring(dot + 1);
            var withPath = step with { Path = path };
            if (parent.TryGetChild(name, out var existing))
            {
                if (allowShare && parent == root && CanShare(existing, step))
                    return named[step.Id] = withPath with { Shared = true };
                Report(D.DuplicateName, step.Spec.Location, path, declaration.Type.Name);
                return null;
            }
            parent.Add(name, withPath);
            return named[step.Id] = withPath;
        }
    }
}
