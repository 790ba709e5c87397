using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Emit;

/// <summary>
/// Writes a class's description of itself (<c>CeDsl.Architecture</c>): <c>AppendArchitecture</c>, which adds
/// the class's nodes to an architecture being built, following forward statement by statement;
/// <c>DescribeArchitecture</c>, the whole architecture for given constructor arguments and input size; and
/// for networks <c>Architecture</c>, the one of the constructor's defaults and the declared input.
/// </summary>
internal sealed class ArchitectureWriter
{
    private readonly IndentedWriter writer;
    private readonly ClassPlan plan;
    private readonly Dictionary<string, MemberPlan> roots;

    public ArchitectureWriter(IndentedWriter writer, ClassPlan plan)
    {
        this.writer = writer;
        this.plan = plan;
        roots = plan.Members.ToDictionary(m => m.Name, System.StringComparer.Ordinal);
    }

    /// <summary>A value of the architecture being written: its local and the expression it holds now.</summary>
    private sealed class Value
    {
        public Value(string local, string current)
        {
            Local = local;
            Current = current;
        }

        public string Local { get; }
        public string Current { get; set; }
        public bool Declared { get; set; }
    }

    public void Write()
    {
        var arguments = Signatures.Parameters(plan.Signature, withInChannels: false).ToList();
        var name = Signatures.ModuleName(plan.Type);
        if (plan.Signature is NetworkSignature network)
        {
            var declared = $"{network.InputChannels}x{network.InputHeight}x{network.InputWidth}";
            writer.Line($"/// <summary>The architecture of this network as its constructor's defaults build it, for its declared {declared} input.</summary>");
            writer.Line("public static ModuleArchitecture Architecture => architecture ??= DescribeArchitecture();");
            writer.Line();
            writer.Line("private static ModuleArchitecture? architecture;");
            writer.Line();
            WriteDocs("/// <summary>The architecture of this network as the constructor builds it with these arguments, for inputs of inputHeight x inputWidth.</summary>");
            var parameters = Signatures.Parameters(plan.Signature, withInChannels: true)
                .Concat(new[] { ($"long inputHeight = {network.InputHeight}", "inputHeight"), ($"long inputWidth = {network.InputWidth}", "inputWidth") });
            var channels = network.UsesInputChannels ? "inChannels" : Literals.Long(network.InputChannels);
            using (writer.Block($"public static ModuleArchitecture DescribeArchitecture({string.Join(", ", parameters.Select(p => p.Item1))})"))
            {
                writer.Line($"var builder = new ArchitectureBuilder({name}, TensorShape.Map({channels}, inputHeight, inputWidth));");
                writer.Line($"return builder.Build(AppendArchitecture({string.Join(", ", new[] { "builder.Root", "builder.Input" }.Concat(arguments.Select(a => a.Name)))}));");
            }
        }
        else
        {
            WriteDocs("/// <summary>The architecture of this block as the constructor builds it with these arguments, for inputs of inChannels x inputHeight x inputWidth.</summary>");
            var parameters = Signatures.Parameters(plan.Signature, withInChannels: true).ToList();
            parameters.InsertRange(2, new[] { ("long inputHeight", "inputHeight"), ("long inputWidth", "inputWidth") });
            using (writer.Block($"public static ModuleArchitecture DescribeArchitecture({string.Join(", ", parameters.Select(p => p.Declaration))})"))
            {
                writer.Line($"var builder = new ArchitectureBuilder({name}, TensorShape.Map(inChannels, inputHeight, inputWidth));");
                writer.Line($"return builder.Build(AppendArchitecture({string.Join(", ", new[] { "builder.Root", "builder.Input" }.Concat(arguments.Select(a => a.Name)))}));");
            }
        }
        writer.Line();
        WriteAppend(arguments);
    }

    /// <summary>The summary on the trained class; a folded class refers to it (its own differs only in the operations).</summary>
    private void WriteDocs(string summary, string member = "DescribeArchitecture")
    {
        if (plan.Type.Outer is { } outer)
        {
            writer.Line($"/// <inheritdoc cref=\"{outer}.{member}\"/>");
            return;
        }
        writer.Line(summary);
        if (member == "DescribeArchitecture")
            writer.Line("/// <exception cref=\"global::System.ArgumentException\">An input or argument the module cannot take; the message names the node.</exception>");
    }

    private void WriteAppend(List<(string Declaration, string Name)> arguments)
    {
        WriteDocs("/// <summary>Appends this module's nodes, as the module <paramref name=\"scope\"/> called on <paramref name=\"input\"/>, to an architecture being built; returns its output.</summary>", "AppendArchitecture");
        var parameters = new[] { "ArchitectureScope scope", "ArchitectureValue input" }.Concat(arguments.Select(a => a.Declaration));
        using (writer.Block($"public static ArchitectureValue AppendArchitecture({string.Join(", ", parameters)})"))
        {
            if (plan.Signature is BlockSignature or NetworkSignature { UsesInputChannels: true })
                writer.Line("long inChannels = input.Shape.Channels;");
            var x = new Value("x", "input");
            var bypasses = new Stack<string>();
            int splits = 0;
            foreach (var op in plan.Forward)
            {
                switch (op.Kind)
                {
                    case OpKind.Call:
                        Apply(x, roots[op.Target]);
                        break;
                    case OpKind.Split:
                        splits++;
                        var bypass = "bypass" + (splits == 1 ? "" : Literals.Long(splits));
                        writer.Line($"var {bypass} = scope.Apply(new ChunkOp(2, 0), {x.Current});");
                        bypasses.Push(bypass);
                        Assign(x, $"scope.Apply(new ChunkOp(2, 1), {x.Current})");
                        break;
                    case OpKind.Concat:
                        Assign(x, $"scope.Apply(new ConcatOp(), {bypasses.Pop()}, {x.Current})");
                        break;
                    case OpKind.Branches:
                        var outputs = new List<string>();
                        foreach (var branch in op.Targets)
                        {
                            var output = new Value(branch + "Output", x.Current);
                            Apply(output, roots[branch]);
                            outputs.Add(output.Current);
                        }
                        Assign(x, $"scope.Apply(new ConcatOp(), {string.Join(", ", outputs)})");
                        break;
                    case OpKind.Shuffle:
                        Assign(x, $"scope.Apply(new ChannelShuffleOp({Literals.Long(op.Groups)}), {x.Current})");
                        break;
                    case OpKind.Residual when plan.Signature is BlockSignature block:
                        WriteResidual(block, x);
                        break;
                }
            }
            writer.Line($"return {x.Current};");
        }
    }

    private void Assign(Value value, string expression)
    {
        writer.Line((value.Declared ? "" : "var ") + value.Local + " = " + expression + ";");
        value.Declared = true;
        value.Current = value.Local;
    }

    private void Declare(Value value)
    {
        if (!value.Declared) Assign(value, value.Current);
    }

    /// <summary>Applies a member (a module, a block, or a container's members in order) to the value, under its condition.</summary>
    private void Apply(Value value, MemberPlan member)
    {
        if (member.Exists != Condition.True)
        {
            Declare(value);
            writer.Line($"if ({Expressions.Of(member.Exists)})");
            if (member.Leaf is not null)
            {
                using (writer.Indent()) Assign(value, Call(member, value.Current));
            }
            else
            {
                using (writer.Block())
                {
                    foreach (var child in member.Children) Apply(value, child);
                }
            }
            return;
        }
        if (member.Leaf is not null)
        {
            Assign(value, Call(member, value.Current));
            return;
        }
        foreach (var child in member.Children) Apply(value, child);
    }

    private string Call(MemberPlan member, string input)
    {
        var path = Literals.String(member.Path);
        return member.Leaf is BlockPlan block
            ? $"{Modules.BlockType(block, plan.Type)}.AppendArchitecture(scope.Within({path}), {input}, {Modules.BlockArguments(block.Arguments, named: true, withInChannels: false)})"
            : $"scope.Module({path}, {Modules.Operation(member.Leaf!)}, {input})";
    }

    private void WriteResidual(BlockSignature block, Value x)
    {
        string Add(string shortcut) => $"scope.Apply(new AddOp(), {x.Current}, {shortcut})";
        switch (block.Residual, block.ResidualCondition.Known)
        {
            case (Shortcut.Projection, true or null):
                var identity = new Value("identity", "input");
                Apply(identity, roots["downsample"]);
                Assign(x, Add(identity.Current));
                break;
            case (Shortcut.IdentityIfSameShape, false):
                break;
            case (Shortcut.IdentityIfSameShape, null):
                Declare(x);
                writer.Line($"if ({Expressions.Of(block.ResidualCondition)})");
                using (writer.Indent()) Assign(x, Add("input"));
                break;
            default:
                Assign(x, Add("input"));
                break;
        }
    }
}
