using System.Reflection;
using CeDsl.Analysis;
using CeDsl.Architecture;
using CeDsl.Folding;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// Every zoo network's architecture description, and its folded form's, against the module the constructor
/// builds: the same state dict (every parameter and buffer under exactly one node, with its shape and kind),
/// the shapes a real forward produces (hooks on every module), and NetworkSummary's parameters and
/// multiply-accumulates. At a small input (64x64 where CE sits at stride 32, 32x32 otherwise) to keep it short.
/// </summary>
public class ArchitectureTests
{
    public static TheoryData<string> Names => new(Zoo.Names);

    private static long Side(ZooEntry entry) => entry.Family.StartsWith("mobilenet", StringComparison.Ordinal) || entry.Family.StartsWith("shufflenet", StringComparison.Ordinal) ? 64 : 32;

    /// <summary>The type's <c>DescribeArchitecture</c> with its default constructor arguments, for a square input of <paramref name="side"/>.</summary>
    private static ModuleArchitecture Describe(Type type, long side)
    {
        var method = type.GetMethod("DescribeArchitecture", BindingFlags.Public | BindingFlags.Static)!;
        var arguments = method.GetParameters().Select(p => p.Name is "inputHeight" or "inputWidth" ? side : p.DefaultValue).ToArray();
        return (ModuleArchitecture)method.Invoke(null, arguments)!;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void TheArchitectureDescribesTheNetworkAndItsFoldedForm(string name)
    {
        var entry = Zoo.Find(name);
        long side = Side(entry);
        var input = TensorShape.Map(entry.InputShape[0], side, side);

        using var network = entry.Create();
        Perturb(network);
        var architecture = Describe(entry.Type, side);
        Assert.Equal(entry.Type.Name, architecture.Name);
        // Its training-mode forward also estimates the running statistics that folding needs.
        AssertDescribes(name, architecture, network, input, training: true);
        AssertReplays(name, architecture, network, input);

        network.eval();
        using var folded = ((IFoldable)network).Fold();
        var foldedArchitecture = Describe(entry.Type.GetNestedType("Folded")!, side);
        Assert.Equal(entry.Type.Name + ".Folded", foldedArchitecture.Name);
        AssertDescribes(name + " (folded)", foldedArchitecture, folded, input, training: false);
        AssertReplays(name + " (folded)", foldedArchitecture, folded, input);
    }

    /// <summary>Moves every parameter off its initial value (norms' ones and zeros, zero shifts), so that an argument or state entry a replay mixes up shows.</summary>
    private static void Perturb(nn.Module network)
    {
        using var noGrad = no_grad();
        manual_seed(11);
        foreach (var (_, parameter) in network.named_parameters())
        {
            // A tenth of a random weight's spread; 0.05 for constant ones (a norm's weight and bias, CE's lambda).
            double spread = parameter.numel() > 1 ? parameter.std().item<float>() : 0;
            parameter.add_(randn_like(parameter) * (spread > 0 ? 0.1 * spread : 0.05));
        }
    }

    /// <summary>
    /// Walking the nodes in order, with every operation rebuilt from its values and its state read from the module's state
    /// dict by the node's keys (what an exporter does), gives the module's evaluation output.
    /// </summary>
    private static void AssertReplays(string what, ModuleArchitecture architecture, nn.Module<Tensor, Tensor> network, TensorShape input)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        network.eval();
        manual_seed(12);
        var x = randn(input.WithBatch(2));
        var expected = network.call(x.clone());
        var replayed = ArchitectureReplay.Evaluate(architecture, network.state_dict(), x.clone());
        Assert.Equal(expected.shape, replayed.shape);
        double scale = expected.abs().max().item<float>();
        double difference = (expected - replayed).abs().max().item<float>();
        Assert.True(difference <= 1e-5 * scale, $"{what}: the replayed architecture differs from the module's output by {difference} (largest output {scale})");
    }

    private static void AssertDescribes(string what, ModuleArchitecture architecture, nn.Module<Tensor, Tensor> network, TensorShape input, bool training)
    {
        Assert.Equal(input, architecture.Input);

        // Every parameter and buffer belongs to exactly one node, with its shape, kind and element type.
        var described = architecture.State;
        Assert.Equal(described.Count, described.Select(s => s.Key).Distinct().Count());
        var state = network.state_dict();
        Assert.Equal(state.Keys.Order(StringComparer.Ordinal), described.Select(s => s.Key).Order(StringComparer.Ordinal));
        var parameters = network.named_parameters().Select(p => p.name).ToHashSet();
        foreach (var (key, entry) in described)
        {
            var tensor = state[key];
            Assert.True(tensor.shape.SequenceEqual(entry.Shape), $"{what}: '{key}' is [{string.Join(", ", tensor.shape)}], described [{string.Join(", ", entry.Shape)}]");
            Assert.Equal(parameters.Contains(key), entry.Kind == StateKind.Parameter);
            Assert.Equal(tensor.dtype == ScalarType.Int64, entry.IsInteger);
        }

        // The shapes of a real forward: the k-th call of a module is the k-th node of that module.
        var modules = network.named_modules().ToDictionary(m => m.name, m => m.module);
        var calls = new Dictionary<string, List<long[]>>();
        var removers = new List<Action>();
        foreach (var path in architecture.Modules)
        {
            Assert.True(modules.TryGetValue(path, out var module), $"{what}: the network has no module '{path}'");
            var outputs = calls[path] = [];
            var remover = ((nn.Module<Tensor, Tensor>)module!).register_forward_hook((_, _, output) =>
            {
                outputs.Add(output.shape.Skip(1).ToArray());
                return output;
            });
            removers.Add(remover.remove);
        }
        long[] outputShape;
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            network.train(training);
            outputShape = network.call(randn(input.WithBatch(2))).shape.Skip(1).ToArray();
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        var seen = new Dictionary<string, int>();
        foreach (var node in architecture.Nodes.Where(n => n.Module is not null))
        {
            var module = node.Module!;
            int call = seen[module] = seen.GetValueOrDefault(module) + 1;
            Assert.True(calls[module].Count >= call, $"{what}: '{module}' ran {calls[module].Count} times, described {call}");
            Assert.True(node.Shape.Dimensions.SequenceEqual(calls[module][call - 1]), $"{what}: node '{node.Name}' is {node.Shape}, the module gives {string.Join("x", calls[module][call - 1])}");
        }
        foreach (var (module, outputs) in calls)
            Assert.True(outputs.Count == seen[module], $"{what}: '{module}' ran {outputs.Count} times, described {seen[module]}");
        Assert.Equal(outputShape, architecture.Output.Dimensions);

        // NetworkSummary's counts.
        var summary = NetworkSummary.Of(network, input.Dimensions);
        Assert.Equal(summary.Parameters, architecture.Parameters);
        Assert.Equal(summary.MultiplyAccumulates, architecture.MultiplyAccumulates);
        Assert.Equal(summary.ElementwiseOperations, architecture.ElementwiseOperations);
    }

    [Fact]
    public void ANetworksArchitectureIsThatOfItsDefaultsAndDeclaredInput()
    {
        var architecture = CeResNet50.Architecture;
        Assert.Same(architecture, CeResNet50.Architecture);
        Assert.Equal(TensorShape.Map(3, 224, 224), architecture.Input);
        Assert.Equal(TensorShape.Features(1000), architecture.Output);
        Assert.Equal(29_331_926, architecture.Parameters);
        Assert.Equal(CeResNet50.DescribeArchitecture().Nodes.Select(n => n.ToString()), architecture.Nodes.Select(n => n.ToString()));

        var folded = CeResNet50.Folded.Architecture;
        Assert.Equal("CeResNet50.Folded", folded.Name);
        Assert.DoesNotContain(folded.Nodes, n => n.Operation is BatchNorm2dOp or ChannelEquilibriumOp);
        Assert.Equal(14, folded.Nodes.Count(n => n.Operation is FoldedChannelEquilibriumOp { InPlace: true }));
    }

    [Fact]
    public void ConstructorArgumentsAndInputSizeResolveEveryValue()
    {
        var architecture = CeResNet20.DescribeArchitecture(classes: 7, inChannels: 1, inputHeight: 28, inputWidth: 28);
        Assert.Equal(TensorShape.Map(1, 28, 28), architecture.Input);
        Assert.Equal(new Conv2dOp(1, 16, 3, Padding: 1, Bias: false), architecture["conv1"].Operation);
        Assert.Equal(new ChannelEquilibriumOp(16, GroupSize: 64, Reduction: 4), architecture["ce1"].Operation);
        Assert.Equal(16, ((ChannelEquilibriumOp)architecture["ce1"].Operation).GroupSize); // 64 halved to 16 for 16 channels
        Assert.Equal(TensorShape.Map(32, 14, 14), architecture["layer2.0.conv1"].Shape);
        Assert.Equal(["layer2.0.ce", "layer2.0.downsample.1"], architecture["layer2.0.add"].Inputs.Select(i => architecture[i].Module));
        Assert.Equal(TensorShape.Features(7), architecture.Output);

        // A block on its own: its sizes and shortcut follow from its arguments.
        var block = BasicBlock.DescribeArchitecture(inChannels: 16, width: 32, inputHeight: 8, inputWidth: 8, stride: 2);
        Assert.Equal(TensorShape.Map(32, 4, 4), block.Output);
        Assert.Contains(block.Nodes, n => n.Module == "downsample.0");
        Assert.DoesNotContain(BasicBlock.DescribeArchitecture(16, 16, 8, 8).Nodes, n => n.Module == "downsample.0");
    }

    [Fact]
    public void AnInputTheNetworkCannotTakeIsRefusedWithTheNodeThatCannot()
    {
        // VGG-16's classifier takes the 512 features of a 32x32 input only.
        var error = Assert.Throws<ArgumentException>(() => Vgg16Bn.DescribeArchitecture(inputHeight: 64, inputWidth: 64));
        Assert.Contains("node 'classifier'", error.Message);
        Assert.Contains("built for 512 features, but its input has 2048", error.Message);
    }
}
