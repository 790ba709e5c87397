using CeDsl.Architecture;

namespace CeDsl.PyTorch;

/// <summary>A submodule of a <see cref="ModuleScope"/>: a leaf module (one operation) or a module holding others.</summary>
/// <param name="Name">Its name in its parent (<c>conv1</c>, <c>0</c>).</param>
/// <param name="Path">Its path in the network (<c>layer1.0.conv1</c>).</param>
/// <param name="Scope">The module holding others, or null for a leaf.</param>
/// <param name="Leaf">The leaf's first node (its operation), or null.</param>
internal sealed record Member(string Name, string Path, ModuleScope? Scope, ArchitectureNode? Leaf);

/// <summary>One line of a forward: a submodule called on a value, or a dataflow operation.</summary>
/// <param name="Inputs">The values it reads.</param>
/// <param name="Output">The value it computes.</param>
internal abstract record Statement(IReadOnlyList<string> Inputs, string Output);

/// <summary><c>output = self.member(input)</c>.</summary>
internal sealed record CallStatement(Member Member, string Input, string Output) : Statement([Input], Output);

/// <summary>An addition, concatenation, chunk or channel shuffle.</summary>
internal sealed record DataflowStatement(ArchitectureNode Node) : Statement(Node.Inputs, Node.Name);

/// <summary>
/// A module of the network that holds other modules (the network itself, a block, a Sequential), recovered
/// from the module paths of an architecture's nodes: its members in the order forward first calls them, its
/// one input and one output value, and its forward as statements.
/// </summary>
internal sealed class ModuleScope(string path)
{
    public string Path { get; } = path;

    public List<Member> Members { get; } = [];

    /// <summary>The indices of the architecture's nodes computed inside it, ascending.</summary>
    public List<int> Nodes { get; } = [];

    public string Input { get; set; } = "";

    public string Output { get; set; } = "";

    public List<Statement> Statements { get; } = [];

    /// <summary>Whether it is a Sequential: its members called once each, in order, each on the previous one's output.</summary>
    public bool IsSequential { get; set; }

    public int Depth => Path.Length == 0 ? 0 : Path.Count(c => c == '.') + 1;

    public override string ToString() => Path.Length == 0 ? "the network" : $"module '{Path}'";
}

/// <summary>Recovers the module tree of an architecture, the forward of each module, and which modules are Sequentials.</summary>
internal static class ModuleTree
{
    /// <param name="architecture">The architecture.</param>
    /// <param name="isSequential">Whether the module at a path is a Sequential; null when unknown (then a module whose
    /// members run once each, one after the other, is taken for one).</param>
    /// <returns>Every module that holds others, the network's first.</returns>
    /// <exception cref="NotSupportedException">A module cannot be written as a PyTorch module (it takes or gives more than one value, or its nodes are not computed in one call).</exception>
    public static IReadOnlyList<ModuleScope> Build(ModuleArchitecture architecture, Func<string, bool?> isSequential)
    {
        var root = new ModuleScope("");
        var scopes = new Dictionary<string, ModuleScope>(StringComparer.Ordinal) { [""] = root };
        var leaves = new Dictionary<string, Member>(StringComparer.Ordinal);
        var order = new List<ModuleScope> { root };

        ModuleScope ScopeAt(string path)
        {
            if (scopes.TryGetValue(path, out var scope)) return scope;
            if (leaves.ContainsKey(path))
                throw new NotSupportedException($"{architecture.Name}: '{path}' is both a module with an operation and a module holding others.");
            var parent = ScopeAt(ParentOf(path));
            scopes[path] = scope = new ModuleScope(path);
            parent.Members.Add(new Member(LastOf(path), path, scope, null));
            order.Add(scope);
            return scope;
        }

        var nodes = architecture.Nodes;
        for (int i = 0; i < nodes.Count; i++)
        {
            var node = nodes[i];
            ModuleScope owner;
            if (node.Module is { } module)
            {
                if (module.Length == 0 || scopes.ContainsKey(module))
                    throw new NotSupportedException($"{architecture.Name}: node '{node.Name}' runs the module '{module}', which holds other modules.");
                owner = ScopeAt(ParentOf(module));
                if (!leaves.ContainsKey(module))
                    owner.Members.Add(leaves[module] = new Member(LastOf(module), module, null, node));
            }
            else
            {
                owner = ScopeAt(DataflowScope(node.Name));
            }
            for (var scope = owner; ; scope = scopes[ParentOf(scope.Path)])
            {
                scope.Nodes.Add(i);
                if (scope.Path.Length == 0) break;
            }
        }

        root.Input = ModuleArchitecture.InputName;
        root.Output = architecture.OutputName;
        foreach (var scope in order.Skip(1))
            Bound(architecture, scope);
        foreach (var scope in order)
        {
            WriteStatements(architecture, scope, scopes);
            bool chain = IsChain(scope);
            bool? declared = scope.Path.Length == 0 ? false : isSequential(scope.Path);
            if (declared == true && !chain)
                throw new NotSupportedException($"{architecture.Name}: {scope} is a Sequential, but its modules do not run one after the other, each once.");
            scope.IsSequential = declared ?? chain;
        }
        return order;
    }

    /// <summary>The one value a module reads from outside and the one value it gives, checking its nodes run in one call.</summary>
    private static void Bound(ModuleArchitecture architecture, ModuleScope scope)
    {
        int first = scope.Nodes[0], last = scope.Nodes[^1];
        if (last - first + 1 != scope.Nodes.Count)
            throw new NotSupportedException($"{architecture.Name}: the nodes of {scope} are not computed in one call (other nodes run between them).");
        var produced = scope.Nodes.Select(i => architecture.Nodes[i].Name).ToHashSet(StringComparer.Ordinal);
        var inputs = scope.Nodes.SelectMany(i => architecture.Nodes[i].Inputs).Where(v => !produced.Contains(v)).Distinct(StringComparer.Ordinal).ToList();
        var read = architecture.Nodes.Where((_, i) => i < first || i > last).SelectMany(n => n.Inputs).Append(architecture.OutputName).ToHashSet(StringComparer.Ordinal);
        var outputs = scope.Nodes.Select(i => architecture.Nodes[i].Name).Where(read.Contains).ToList();
        if (inputs.Count != 1 || outputs.Count != 1)
            throw new NotSupportedException(
                $"{architecture.Name}: {scope} reads {inputs.Count} values from outside ({string.Join(", ", inputs)}) and gives {outputs.Count} ({string.Join(", ", outputs)}); a PyTorch module here takes one tensor and returns one.");
        scope.Input = inputs[0];
        scope.Output = outputs[0];
    }

    private static void WriteStatements(ModuleArchitecture architecture, ModuleScope scope, Dictionary<string, ModuleScope> scopes)
    {
        var called = new HashSet<string>(StringComparer.Ordinal);
        for (int k = 0; k < scope.Nodes.Count; k++)
        {
            var node = architecture.Nodes[scope.Nodes[k]];
            string owner = node.Module is { } module ? ParentOf(module) : DataflowScope(node.Name);
            if (owner == scope.Path)
            {
                if (node.Module is null)
                {
                    scope.Statements.Add(new DataflowStatement(node));
                }
                else
                {
                    if (node.Inputs.Count != 1)
                        throw new NotSupportedException($"{architecture.Name}: node '{node.Name}' calls a module on {node.Inputs.Count} values.");
                    scope.Statements.Add(new CallStatement(scope.Members.Single(m => m.Path == node.Module), node.Inputs[0], node.Name));
                }
                continue;
            }
            string childPath = ChildOf(scope.Path, owner);
            var child = scopes[childPath];
            if (!called.Add(childPath))
                throw new NotSupportedException($"{architecture.Name}: {child} is called more than once.");
            scope.Statements.Add(new CallStatement(scope.Members.Single(m => m.Path == childPath), child.Input, child.Output));
            k += child.Nodes.Count - 1;
        }
    }

    private static bool IsChain(ModuleScope scope)
    {
        if (scope.Statements.Count == 0 || scope.Statements.Count != scope.Members.Count) return false;
        string previous = scope.Input;
        for (int k = 0; k < scope.Statements.Count; k++)
        {
            if (scope.Statements[k] is not CallStatement call || call.Member != scope.Members[k] || call.Input != previous)
                return false;
            previous = call.Output;
        }
        return previous == scope.Output;
    }

    private static string ParentOf(string path) => path.LastIndexOf('.') is var dot and >= 0 ? path[..dot] : "";

    private static string LastOf(string path) => path[(path.LastIndexOf('.') + 1)..];

    /// <summary>The path of the scope a dataflow node was added in: <c>layer1.0.add</c> and <c>stage2.1.chunk:2</c> are in <c>layer1.0</c> and <c>stage2.1</c>.</summary>
    private static string DataflowScope(string name) => ParentOf(name.LastIndexOf(':') is var colon and >= 0 ? name[..colon] : name);

    /// <summary>The direct member of <paramref name="scope"/> that holds <paramref name="descendant"/>.</summary>
    private static string ChildOf(string scope, string descendant)
    {
        string rest = scope.Length == 0 ? descendant : descendant[(scope.Length + 1)..];
        int dot = rest.IndexOf('.');
        string name = dot < 0 ? rest : rest[..dot];
        return scope.Length == 0 ? name : scope + "." + name;
    }
}
