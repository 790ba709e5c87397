using System.Globalization;
using CeDsl.Architecture;

namespace CeDsl.PyTorch;

/// <summary>
/// A Python class the export writes: for the network, or for every block of one kind (the same class name, the
/// same forward, submodules built by the same constructors), with a constructor parameter for each value that
/// differs between those blocks.
/// </summary>
internal sealed class PythonClass(int id, string baseName)
{
    /// <summary>Tells classes apart in <see cref="PythonExpression.Shape"/> before they are named.</summary>
    public int Id { get; } = id;

    /// <summary>The name of the .NET class (or <c>Block</c>); variants get suffixes.</summary>
    public string BaseName { get; } = baseName;

    public string Name { get; set; } = baseName;

    /// <summary>The modules it builds, the first one's forward is written.</summary>
    public List<ModuleScope> Instances { get; } = [];

    public List<ClassParameter> Parameters { get; } = [];

    /// <summary>Its submodules, in the order forward first calls them, and what builds each.</summary>
    public List<(string Name, PythonExpression Construct)> Members { get; } = [];

    public ModuleScope Template => Instances[0];
}

/// <summary>Groups the network's modules into classes and builds each class's members and parameters, innermost modules first.</summary>
internal sealed class ClassBuilder(ModuleArchitecture architecture, PyTorchExportOptions options)
{
    /// <summary>Names the module file defines besides the classes.</summary>
    private static readonly string[] ModuleNames = ["nn", "torch", "cedsl_torch", "OrderedDict", "create", "INPUT_SHAPE", "OUTPUT_SHAPE"];

    private readonly Dictionary<ModuleScope, PythonInstance> instances = [];

    /// <returns>The classes, each after the classes it uses; the network's last.</returns>
    public IReadOnlyList<PythonClass> Build(IReadOnlyList<ModuleScope> scopes)
    {
        var classes = new List<PythonClass>();
        foreach (var level in scopes.Where(s => !s.IsSequential).GroupBy(s => s.Depth).OrderByDescending(g => g.Key))
        {
            var groups = new Dictionary<string, (PythonClass Class, List<IReadOnlyList<PythonExpression>> Members)>(StringComparer.Ordinal);
            foreach (var scope in level.OrderBy(s => s.Nodes[0]))
            {
                var members = scope.Members.Select(Construct).ToList();
                string baseName = BaseName(scope);
                string key = baseName + "|" + Signature(scope) + "|" + string.Join(";", scope.Members.Select((m, i) => m.Name + "=" + members[i].Shape));
                if (!groups.TryGetValue(key, out var group))
                    groups[key] = group = (new PythonClass(classes.Count + groups.Count, baseName), []);
                group.Class.Instances.Add(scope);
                group.Members.Add(members);
            }
            foreach (var (type, members) in groups.Values)
            {
                Unify(type, members);
                classes.Add(type);
            }
        }
        NameClasses(classes);
        return classes;
    }

    private string BaseName(ModuleScope scope) =>
        options.ClassNames.TryGetValue(scope.Path, out var name) ? PythonSource.Identifier(name)
        : scope.Path.Length == 0 ? PythonSource.Identifier(architecture.Name.Replace(".", "", StringComparison.Ordinal))
        : "Block";

    /// <summary>What builds a member: its operation's constructor, a Sequential of its members, or its block's class.</summary>
    private PythonExpression Construct(Member member) => member switch
    {
        { Leaf: { } node } => ModuleConstructors.Of(node),
        { Scope: { IsSequential: true } sequential } => new PythonSequential([.. sequential.Members.Select(m => (m.Name, Construct(m)))]),
        { Scope: { } block } => instances[block],
        _ => throw new InvalidOperationException($"Member '{member.Path}' has neither an operation nor members."),
    };

    /// <summary>The forward, with values numbered by the statement that computes them: equal for modules one class can compute.</summary>
    private static string Signature(ModuleScope scope)
    {
        var ids = new Dictionary<string, string>(StringComparer.Ordinal) { [scope.Input] = "x" };
        var parts = new List<string>();
        foreach (var statement in scope.Statements)
        {
            string inputs = string.Join(",", statement.Inputs.Select(v => ids[v]));
            parts.Add(statement switch
            {
                CallStatement call => $"{call.Member.Name}({inputs})",
                DataflowStatement dataflow => $"{Dataflow(dataflow.Node)}({inputs})",
                _ => throw new InvalidOperationException(statement.GetType().Name),
            });
            ids[statement.Output] = "v" + parts.Count.ToString(CultureInfo.InvariantCulture);
        }
        return string.Join(" ", parts) + " -> " + ids[scope.Output];
    }

    private static string Dataflow(ArchitectureNode node) => node.Operation switch
    {
        AddOp or ConcatOp => node.Operation.Kind,
        ChunkOp c => string.Create(CultureInfo.InvariantCulture, $"Chunk{c.Chunks}[{c.Index}]"),
        ChannelShuffleOp s => string.Create(CultureInfo.InvariantCulture, $"ChannelShuffle{s.Groups}"),
        _ => throw new NotSupportedException($"node '{node.Name}' computes {node.Operation.Kind} without a module, which has no PyTorch form in cedsl's exporter (it writes additions, concatenations, chunks and channel shuffles)."),
    };

    /// <summary>The class's members with a parameter for every value that differs between its modules, and each module's call of the class.</summary>
    private void Unify(PythonClass type, List<IReadOnlyList<PythonExpression>> members)
    {
        var unifier = new Unifier(type.Instances.Count);
        for (int j = 0; j < type.Template.Members.Count; j++)
        {
            string name = type.Template.Members[j].Name;
            type.Members.Add((name, unifier.Unify([.. members.Select(m => m[j])], name, name)));
        }
        type.Parameters.AddRange(unifier.Parameters);
        NameParameters(type);
        for (int i = 0; i < type.Instances.Count; i++)
            instances[type.Instances[i]] = new PythonInstance(type, [.. type.Parameters.Select(p => new PythonArgument(p.Name, new PythonLiteral(p.Values[i])))]);
    }

    /// <summary>
    /// in_channels and out_channels for the parameters that are the modules' input and output channels (channels when
    /// both), the argument's own name where it is passed as one argument only (stride), else the first place it is used
    /// (conv1_out_channels).
    /// </summary>
    private void NameParameters(PythonClass type)
    {
        var inputs = type.Instances.Select(s => (object?)architecture.ShapeOf(s.Input).Channels).ToList();
        var outputs = type.Instances.Select(s => (object?)architecture.ShapeOf(s.Output).Channels).ToList();
        var taken = new HashSet<string>(StringComparer.Ordinal) { "self", "x" };
        foreach (var parameter in type.Parameters)
        {
            bool isInput = parameter.Values.SequenceEqual(inputs), isOutput = parameter.Values.SequenceEqual(outputs);
            string qualified = PythonSource.Identifier(parameter.Path + "_" + parameter.Argument);
            string name = isInput && isOutput ? "channels" : isInput ? "in_channels" : isOutput ? "out_channels"
                : parameter.Arguments.Count == 1 ? PythonSource.Identifier(parameter.Argument) : qualified;
            if (taken.Contains(name)) name = qualified;
            string unique = name;
            for (int n = 2; !taken.Add(unique); n++)
                unique = name + n.ToString(CultureInfo.InvariantCulture);
            parameter.Name = unique;
        }
    }

    /// <summary>
    /// Classes of one base name that differ are named after the members and dataflow operations only some of them
    /// have (<c>BasicBlock</c>, <c>BasicBlockWithDownsample</c>, <c>InvertedResidualWithAdd</c>), then numbered
    /// where that does not tell them apart.
    /// </summary>
    private static void NameClasses(List<PythonClass> classes)
    {
        var used = new HashSet<string>(ModuleNames, StringComparer.Ordinal);
        var network = classes[^1];
        used.Add(network.Name = network.BaseName);
        foreach (var variants in classes.Take(classes.Count - 1).GroupBy(c => c.BaseName))
        {
            var features = variants.ToDictionary(c => c, Features);
            var common = features.Values.Skip(1).Aggregate(features.Values.First().ToHashSet(StringComparer.Ordinal), (all, set) => { all.IntersectWith(set); return all; });
            foreach (var type in variants)
            {
                var optional = features[type].Where(f => !common.Contains(f)).ToList();
                string name = optional.Count == 0 ? type.BaseName : type.BaseName + "With" + string.Join("And", optional);
                string unique = name;
                for (int n = 2; !used.Add(unique); n++)
                    unique = name + n.ToString(CultureInfo.InvariantCulture);
                type.Name = unique;
            }
        }
    }

    /// <summary>A class's members and dataflow operations, in forward's order: Conv1, ..., Downsample, Add.</summary>
    private static List<string> Features(PythonClass type) =>
    [
        .. type.Members.Select(m => PythonSource.Pascal(m.Name)),
        .. type.Template.Statements.OfType<DataflowStatement>().Select(s => s.Node.Operation.Kind).Distinct(StringComparer.Ordinal),
    ];
}
