using System.Globalization;
using System.Text;

namespace CeDsl.Architecture;

/// <summary>
/// One step of a module's forward: <see cref="Operation"/> applied to the values named by
/// <see cref="Inputs"/> (the outputs of earlier nodes, or <see cref="ModuleArchitecture.InputName"/>).
/// </summary>
/// <param name="Name">The name of the value it computes, unique in the architecture: the module's path for the first call of a
/// module (<c>layer1.0.conv1</c>), the path with <c>:2</c>, <c>:3</c>... for later calls of the same module (torchvision's shared
/// <c>relu</c>), the scope and the operation for dataflow nodes (<c>layer1.0.add</c>).</param>
/// <param name="Operation">What it computes, with every argument.</param>
/// <param name="Inputs">The values it reads, in argument order (for an addition: the main path, then the shortcut).</param>
/// <param name="Module">The module's path in the network, the prefix of its state-dict keys; null for dataflow operations.</param>
/// <param name="Shape">The shape of its output, per sample.</param>
public sealed record ArchitectureNode(string Name, Operation Operation, IReadOnlyList<string> Inputs, string? Module, TensorShape Shape)
{
    /// <summary>The full state-dict keys of its parameters and buffers, with their entries (none for dataflow operations).</summary>
    public IEnumerable<(string Key, StateEntry Entry)> State =>
        Module is null ? [] : Operation.State.Select(entry => (Module.Length == 0 ? entry.Name : Module + "." + entry.Name, entry));

    /// <inheritdoc/>
    public override string ToString() => $"{Name} = {Operation.Kind}({string.Join(", ", Inputs)}) -> {Shape}";
}

/// <summary>
/// The architecture of a module as data: a graph of <see cref="ArchitectureNode"/>s in the order forward
/// computes them, from one input to one output, with every operation's arguments, every parameter's and
/// buffer's state-dict key, and every value's shape. Every generated block and network describes itself
/// with one (<c>CeResNet50.Architecture</c>, <c>CeResNet50.Folded.Architecture</c>, <c>DescribeArchitecture(...)</c>
/// for other constructor arguments or input sizes); exporters read it with a state dict.
/// </summary>
public sealed class ModuleArchitecture
{
    /// <summary>The name of the module's input value, which no node has.</summary>
    public const string InputName = "input";

    private readonly Dictionary<string, ArchitectureNode> byName;

    internal ModuleArchitecture(string name, TensorShape input, IReadOnlyList<ArchitectureNode> nodes, string outputName)
    {
        Name = name;
        Input = input;
        Nodes = nodes;
        OutputName = outputName;
        byName = nodes.ToDictionary(n => n.Name, StringComparer.Ordinal);
        Output = ShapeOf(outputName);
    }

    /// <summary>The module's type name, e.g. <c>CeResNet50</c> or <c>CeResNet50.Folded</c>.</summary>
    public string Name { get; }

    /// <summary>The input shape per sample.</summary>
    public TensorShape Input { get; }

    /// <summary>The output shape per sample.</summary>
    public TensorShape Output { get; }

    /// <summary>The name of the value forward returns (<see cref="InputName"/> for a module that computes nothing).</summary>
    public string OutputName { get; }

    /// <summary>The nodes in forward's order: every node comes after the nodes it reads.</summary>
    public IReadOnlyList<ArchitectureNode> Nodes { get; }

    /// <summary>The node computing the value <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No node has that name.</exception>
    public ArchitectureNode this[string name] =>
        byName.TryGetValue(name, out var node) ? node : throw new KeyNotFoundException($"{Name} has no node '{name}'.");

    /// <summary>The shape of the value <paramref name="name"/> (a node's output or the input).</summary>
    public TensorShape ShapeOf(string name) => name == InputName ? Input : this[name].Shape;

    /// <summary>The paths of the modules, in the order forward first calls them (a module called twice appears once).</summary>
    public IReadOnlyList<string> Modules => Nodes.Where(n => n.Module is not null).Select(n => n.Module!).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>
    /// The module's state dict as the architecture builds it: every parameter and buffer, with its key, once
    /// (a module called twice holds its state once).
    /// </summary>
    public IReadOnlyList<(string Key, StateEntry Entry)> State =>
        Nodes.Where(n => n.Module is not null).DistinctBy(n => n.Module, StringComparer.Ordinal).SelectMany(n => n.State).ToList();

    /// <summary>The parameters of the module.</summary>
    public long Parameters => State.Where(s => s.Entry.Kind == StateKind.Parameter).Sum(s => s.Entry.Elements);

    /// <summary>Multiply-accumulates per sample, by <c>NetworkSummary</c>'s convention (see <see cref="Operation.MultiplyAccumulates"/>).</summary>
    public long MultiplyAccumulates => Nodes.Sum(n => n.Operation.MultiplyAccumulates(n.Inputs.Select(ShapeOf).ToList(), n.Shape));

    /// <summary>One operation per output element of every normalization and activation, per sample.</summary>
    public long ElementwiseOperations => Nodes.Sum(n => n.Operation.ElementwiseOperations(n.Shape));

    /// <summary>A listing: one node per line, then the output.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{Name}: {InputName} {Input}\n");
        foreach (var node in Nodes) text.Append(CultureInfo.InvariantCulture, $"  {node}\n");
        text.Append(CultureInfo.InvariantCulture, $"  output {OutputName} {Output}\n");
        return text.ToString();
    }
}
