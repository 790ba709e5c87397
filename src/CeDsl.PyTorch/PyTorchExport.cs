using System.Globalization;
using System.Text;
using CeDsl.Architecture;

namespace CeDsl.PyTorch;

/// <summary>
/// Writes a network or block as a PyTorch module (Python source) from its architecture description: one
/// <c>nn.Module</c> class for the network and one per kind of block, with the submodule names of the TorchSharp
/// module, so that <c>state_dict()</c> has the same keys and shapes and weights move between the two unchanged;
/// CeDsl's layers come from the <c>cedsl_torch</c> package (python/cedsl_torch, docs/python.md).
/// </summary>
/// <example>
/// <code>
/// using var network = new CeResNet20(classes: 10, inChannels: 1);
/// string source = PyTorchExport.ToPython(CeResNet20.DescribeArchitecture(classes: 10, inChannels: 1),
///     PyTorchExportOptions.For(network, Init.TorchVision));
/// </code>
/// </example>
public static class PyTorchExport
{
    /// <summary>The Python source of a module file that defines the network's class and a <c>create()</c> that builds it.</summary>
    /// <param name="architecture">What to write (e.g. <c>CeResNet20.DescribeArchitecture(classes: 10, inChannels: 1)</c>).</param>
    /// <param name="options">Class names, Sequentials and initialization (see <see cref="PyTorchExportOptions.For"/>); by default inferred.</param>
    /// <exception cref="NotSupportedException">An operation has no PyTorch form, or a module cannot be a PyTorch module; the message names the node or module.</exception>
    public static string ToPython(ModuleArchitecture architecture, PyTorchExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        options ??= new PyTorchExportOptions();
        var scopes = ModuleTree.Build(architecture, path => options.Sequentials is null ? null : options.Sequentials.Contains(path));
        var classes = new ClassBuilder(architecture, options).Build(scopes);
        return Write(architecture, options, classes);
    }

    private static string Write(ModuleArchitecture architecture, PyTorchExportOptions options, IReadOnlyList<PythonClass> classes)
    {
        var network = classes[^1];
        var text = new StringBuilder();
        string input = string.Join(" x ", architecture.Input.Dimensions.Select(d => d.ToString(CultureInfo.InvariantCulture)));
        string output = string.Join(" x ", architecture.Output.Dimensions.Select(d => d.ToString(CultureInfo.InvariantCulture)));
        text.Append(CultureInfo.InvariantCulture, $""""
            """{architecture.Name} in PyTorch, written by CeDsl's exporter from the network's architecture description.

            Input N x {input}, output N x {output}. The modules have the names of CeDsl's TorchSharp module, so
            state_dict() has the same keys and shapes: a CeDsl state dict (safetensors) loads strictly, and the
            weights trained here load strictly into the CeDsl network. CeDsl's layers (CE, BD, AII, SE, selective
            convolutions) are cedsl_torch's: put the folder python/ of the CeDsl repository on the module path.
            """


            """");
        if (classes.Any(c => c.Members.Any(m => PythonSource.UsesOrderedDict(m.Construct))))
            text.Append("from collections import OrderedDict\n\n");
        text.Append("import torch\nfrom torch import nn\n\nimport cedsl_torch\n\n");
        text.Append(CultureInfo.InvariantCulture, $"INPUT_SHAPE = {Shape(architecture.Input)}\nOUTPUT_SHAPE = {Shape(architecture.Output)}\n");
        foreach (var type in classes)
            WriteClass(text, type, initialize: type == network && options.Initialization == Init.TorchVision);
        text.Append(CultureInfo.InvariantCulture, $""""


            def create():
                """A new {network.Name}."""
                return {network.Name}()

            """");
        return text.ToString();
    }

    private static string Shape(TensorShape shape) =>
        "(" + string.Join(", ", shape.Dimensions.Select(d => d.ToString(CultureInfo.InvariantCulture))) + (shape.Rank == 1 ? ",)" : ")");

    private static void WriteClass(StringBuilder text, PythonClass type, bool initialize)
    {
        string body = PythonSource.Indent + PythonSource.Indent;
        text.Append(CultureInfo.InvariantCulture, $"\n\nclass {type.Name}(nn.Module):\n");
        text.Append(PythonSource.Indent).Append("def __init__(self").Append(string.Concat(type.Parameters.Select(p => ", " + p.Name))).Append("):\n");
        text.Append(body).Append("super().__init__()\n");
        foreach (var (name, construct) in type.Members)
        {
            string expression = PythonSource.Write(construct, body);
            text.Append(body).Append(PythonSource.IsIdentifier(name)
                ? $"self.{name} = {expression}\n"
                : $"self.add_module({PythonLiteral.Format(name)}, {expression})\n");
        }
        if (initialize)
            text.Append(body).Append("cedsl_torch.init_torchvision(self)\n");
        text.Append('\n').Append(PythonSource.Indent).Append("def forward(self, x):\n");
        foreach (string line in ForwardWriter.Lines(type.Template))
            text.Append(body).Append(line).Append('\n');
    }
}

/// <summary>Writes a module's statements as the lines of its forward, naming values as a person would: <c>x</c>, <c>out</c>, reused once dead.</summary>
internal static class ForwardWriter
{
    public static IEnumerable<string> Lines(ModuleScope scope)
    {
        var statements = scope.Statements;
        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int k = 0; k < statements.Count; k++)
        {
            foreach (string value in statements[k].Inputs)
                lastUse[value] = k;
        }
        lastUse[scope.Output] = int.MaxValue;
        var variables = new Dictionary<string, string>(StringComparer.Ordinal) { [scope.Input] = "x" };
        bool first = true;

        for (int k = 0; k < statements.Count; k++)
        {
            var statement = statements[k];
            var inputs = statement.Inputs.Select(v => variables[v]).ToList();
            string? dead = statement.Inputs.FirstOrDefault(v => lastUse[v] == k);
            string variable;
            if (dead is not null)
            {
                variable = variables[dead];
            }
            else
            {
                var live = variables.Where(v => lastUse.GetValueOrDefault(v.Key, -1) > k).Select(v => v.Value).ToHashSet(StringComparer.Ordinal);
                string stem = first ? "out" : statement switch
                {
                    CallStatement call => PythonSource.Identifier(call.Member.Name),
                    DataflowStatement dataflow => PythonSource.Identifier(ArchitectureNames.Operation(dataflow.Node.Operation)),
                    _ => "y",
                };
                variable = stem;
                for (int n = 2; live.Contains(variable) || variable == "self"; n++)
                    variable = stem + n.ToString(CultureInfo.InvariantCulture);
                first = false;
            }
            variables[statement.Output] = variable;
            yield return variable + " = " + Expression(statement, inputs);
        }
        yield return "return " + variables[scope.Output];
    }

    private static string Expression(Statement statement, List<string> inputs)
    {
        if (statement is CallStatement call)
        {
            string module = PythonSource.IsIdentifier(call.Member.Name) ? "self." + call.Member.Name : $"getattr(self, {PythonLiteral.Format(call.Member.Name)})";
            return $"{module}({inputs[0]})";
        }
        var node = ((DataflowStatement)statement).Node;
        return node.Operation switch
        {
            AddOp => $"{inputs[0]} + {inputs[1]}",
            ConcatOp => $"torch.cat([{string.Join(", ", inputs)}], dim=1)",
            ChunkOp c => string.Create(CultureInfo.InvariantCulture, $"{inputs[0]}.chunk({c.Chunks}, dim=1)[{c.Index}]"),
            ChannelShuffleOp s => string.Create(CultureInfo.InvariantCulture, $"cedsl_torch.channel_shuffle({inputs[0]}, {s.Groups})"),
            _ => throw new NotSupportedException($"node '{node.Name}' computes {node.Operation.Kind} without a module, which has no PyTorch form in cedsl's exporter (it writes additions, concatenations, chunks and channel shuffles)."),
        };
    }
}

/// <summary>Names of operations as they appear in statements and grouping keys.</summary>
internal static class ArchitectureNames
{
    /// <summary>"add", "concat", "chunk", "channel_shuffle".</summary>
    public static string Operation(Operation operation) =>
        string.Concat(operation.Kind.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
