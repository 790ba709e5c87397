namespace CeDsl.Architecture;

/// <summary>A value of an architecture being built: a node's output (or the input) and its shape per sample.</summary>
/// <param name="Name">The node's name (<see cref="ModuleArchitecture.InputName"/> for the input).</param>
/// <param name="Shape">The shape per sample.</param>
public readonly record struct ArchitectureValue(string Name, TensorShape Shape);

/// <summary>
/// Builds a <see cref="ModuleArchitecture"/> node by node, computing every output shape from the operation
/// and checking that each operation fits its inputs. Generated classes use it in their
/// <c>AppendArchitecture</c> methods; the scope of a nested block prefixes its module paths.
/// </summary>
public sealed class ArchitectureBuilder
{
    private readonly List<ArchitectureNode> nodes = [];
    private readonly HashSet<string> names = new(StringComparer.Ordinal) { ModuleArchitecture.InputName };
    private readonly Dictionary<string, Operation> modules = new(StringComparer.Ordinal);

    /// <summary>Starts the architecture of module <paramref name="name"/> for inputs of <paramref name="input"/> per sample.</summary>
    public ArchitectureBuilder(string name, TensorShape input)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(input);
        Name = name;
        Input = new ArchitectureValue(ModuleArchitecture.InputName, input);
    }

    /// <summary>The module's name.</summary>
    public string Name { get; }

    /// <summary>The module's input.</summary>
    public ArchitectureValue Input { get; }

    /// <summary>The scope of the module itself (module paths without a prefix).</summary>
    public ArchitectureScope Root => new(this, "");

    /// <summary>The architecture whose output is <paramref name="output"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="output"/> is not a value of this builder.</exception>
    public ModuleArchitecture Build(ArchitectureValue output)
    {
        Require(output);
        return new ModuleArchitecture(Name, Input.Shape, nodes.ToList(), output.Name);
    }

    internal ArchitectureValue Add(string scope, string? module, Operation operation, IReadOnlyList<ArchitectureValue> inputs)
    {
        ArgumentNullException.ThrowIfNull(operation);
        foreach (var input in inputs) Require(input);
        var name = Unique(module ?? (scope.Length == 0 ? "" : scope + ".") + SnakeCase(operation.Kind));
        if (module is not null)
        {
            if (modules.TryGetValue(module, out var existing) && existing != operation)
                throw new ArgumentException($"{Name}: module '{module}' is called as {existing} and as {operation}; a module has one operation.");
            modules[module] = operation;
        }

        TensorShape shape;
        try
        {
            shape = operation.OutputShape(inputs.Select(i => i.Shape).ToList());
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{Name}: node '{name}' does not fit its input ({string.Join(", ", inputs.Select(i => i.Shape))}): {e.Message}", e);
        }
        nodes.Add(new ArchitectureNode(name, operation, inputs.Select(i => i.Name).ToList(), module, shape));
        return new ArchitectureValue(name, shape);
    }

    private void Require(ArchitectureValue value)
    {
        if (value.Name is null || !names.Contains(value.Name))
            throw new ArgumentException($"{Name}: '{value.Name}' is not a value of this architecture.", nameof(value));
    }

    private string Unique(string name)
    {
        var unique = name;
        for (int call = 2; !names.Add(unique); call++)
            unique = name + ":" + call.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return unique;
    }

    private static string SnakeCase(string kind) =>
        string.Concat(kind.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}

/// <summary>
/// Where nodes are added: the module itself (<see cref="ArchitectureBuilder.Root"/>) or a submodule holding a nested
/// block (<see cref="Within"/>), whose path prefixes the module paths and node names.
/// </summary>
public readonly struct ArchitectureScope
{
    private readonly ArchitectureBuilder builder;

    internal ArchitectureScope(ArchitectureBuilder builder, string path)
    {
        this.builder = builder;
        Path = path;
    }

    /// <summary>The path of this scope's module ("" for the module being described).</summary>
    public string Path { get; }

    /// <summary>The scope of the submodule <paramref name="name"/> (a dotted path such as <c>layer1.0</c>).</summary>
    public ArchitectureScope Within(string name) => new(builder, Join(name));

    /// <summary>Calls the submodule <paramref name="name"/>, which computes <paramref name="operation"/>, on <paramref name="input"/>.</summary>
    /// <exception cref="ArgumentException">The operation does not fit the input, or the module was called before with another operation.</exception>
    public ArchitectureValue Module(string name, Operation operation, ArchitectureValue input) => builder.Add(Path, Join(name), operation, [input]);

    /// <summary>Applies a dataflow operation (no module) to <paramref name="inputs"/>.</summary>
    /// <exception cref="ArgumentException">The operation does not fit the inputs.</exception>
    public ArchitectureValue Apply(Operation operation, params ArchitectureValue[] inputs) => builder.Add(Path, null, operation, inputs);

    private string Join(string name) => Path.Length == 0 ? name : Path + "." + name;
}
