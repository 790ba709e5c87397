using CeDsl.Architecture;
using CeDsl.Folding;
using CeDsl.Layers;
using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Architecture;

/// <summary>
/// Every operation against the module it describes, built with the same arguments: the same state-dict keys,
/// shapes, parameter kinds and integer buffers, and the output shape of a real forward.
/// </summary>
public class OperationTests
{
    public static TheoryData<string> Cases => new(Modules.Keys);

    private static readonly TensorShape Map = TensorShape.Map(24, 9, 7);
    private static readonly TensorShape Features = TensorShape.Features(24);

    /// <summary>The module, the operation built from the same arguments, and the input shape per sample.</summary>
    private static readonly Dictionary<string, Func<(nn.Module<Tensor, Tensor> Module, Operation Operation, TensorShape Input)>> Modules = new()
    {
        ["conv"] = () => (nn.Conv2d(24, 12, 3, stride: 2, padding: 1, groups: 3, bias: false), new Conv2dOp(24, 12, 3, Stride: 2, Padding: 1, Groups: 3, Bias: false), Map),
        ["conv with bias and dilation"] = () => (nn.Conv2d(24, 8, 3, dilation: 2), new Conv2dOp(24, 8, 3, Dilation: 2), Map),
        ["batch norm 2d"] = () => (nn.BatchNorm2d(24, eps: 1e-3, momentum: 0.01), new BatchNorm2dOp(24, 1e-3, 0.01), Map),
        ["batch norm 1d"] = () => (nn.BatchNorm1d(24), new BatchNorm1dOp(24), Features),
        ["group norm"] = () => (nn.GroupNorm(4, 24), new GroupNormOp(4, 24), Map),
        ["instance norm"] = () => (nn.InstanceNorm2d(24, affine: true), new InstanceNorm2dOp(24, Affine: true), Map),
        ["layer norm"] = () => (nn.LayerNorm(24), new LayerNormOp(24), Features),
        ["relu"] = () => (nn.ReLU(), new ReLUOp(), Map),
        ["relu6"] = () => (nn.ReLU6(), new ReLU6Op(), Map),
        ["max pool"] = () => (nn.MaxPool2d(3, stride: 2, padding: 1), new MaxPool2dOp(3, 2, 1), Map),
        ["max pool ceil"] = () => (nn.MaxPool2d(2, stride: 2, ceil_mode: true), new MaxPool2dOp(2, 2, CeilMode: true), Map),
        ["avg pool"] = () => (nn.AvgPool2d(2, stride: 2), new AvgPool2dOp(2, 2), Map),
        ["adaptive avg pool"] = () => (nn.AdaptiveAvgPool2d([2, 3]), new AdaptiveAvgPool2dOp(2, 3), Map),
        ["flatten"] = () => (nn.Flatten(), new FlattenOp(), Map),
        ["linear"] = () => (nn.Linear(24, 5), new LinearOp(24, 5), Features),
        ["linear without bias"] = () => (nn.Linear(24, 5, hasBias: false), new LinearOp(24, 5, HasBias: false), Features),
        ["dropout"] = () => (nn.Dropout(0.3), new DropoutOp(0.3), Map),
        ["channel equilibrium (halved group size)"] = () => (new ChannelEquilibrium(24, groupSize: 16, reduction: 4), new ChannelEquilibriumOp(24, GroupSize: 16, Reduction: 4), Map),
        ["batch decorrelation"] = () => (new BatchDecorrelation(24, groupSize: 8), new BatchDecorrelationOp(24, GroupSize: 8), Map),
        ["adaptive instance inverse"] = () => (new AdaptiveInstanceInverse(24, reduction: 3), new AdaptiveInstanceInverseOp(24, 3), Map),
        ["squeeze excitation"] = () => (new SqueezeExcitation(24, reduction: 4), new SqueezeExcitationOp(24, 4), Map),
        ["folded channel equilibrium"] = () => (new FoldedChannelEquilibrium(24, groupSize: 16, reduction: 4), new FoldedChannelEquilibriumOp(24, GroupSize: 16, Reduction: 4), Map),
        ["folded adaptive instance inverse"] = () => (new FoldedAdaptiveInstanceInverse(24, reduction: 3), new FoldedAdaptiveInstanceInverseOp(24, 3), Map),
        ["selective convolution"] = () => (new SelectiveConv2d(24, 16, 3, stride: 2), new SelectiveConv2dOp(24, 16, 3, Stride: 2, Padding: 1), Map),
        ["selective convolution, pruning only"] = () => (new SelectiveConv2d(24, 16, 1, k: 0, dropout: 0.1), new SelectiveConv2dOp(24, 16, 1, K: 0, Dropout: 0.1), Map),
        ["pruned selective convolution"] = () => (new PrunedSelectiveConv2d(24, 16, 3), new PrunedSelectiveConv2dOp(24, 16, 3, Padding: 1), Map),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheOperationDescribesItsModule(string name)
    {
        var (module, operation, input) = Modules[name]();
        using var _ = module;
        var state = module.state_dict();
        Assert.Equal(state.Keys.Order(StringComparer.Ordinal), operation.State.Select(s => s.Name).Order(StringComparer.Ordinal));
        var parameters = module.named_parameters().Select(p => p.name).ToHashSet();
        foreach (var entry in operation.State)
        {
            var tensor = state[entry.Name];
            Assert.True(tensor.shape.SequenceEqual(entry.Shape), $"{name}: '{entry.Name}' is [{string.Join(", ", tensor.shape)}], described [{string.Join(", ", entry.Shape)}]");
            Assert.Equal(parameters.Contains(entry.Name), entry.Kind == StateKind.Parameter);
            Assert.Equal(tensor.dtype == ScalarType.Int64, entry.IsInteger);
        }
        Assert.Equal(module.parameters().Sum(p => p.numel()), operation.Parameters);

        using var scope = NewDisposeScope();
        module.train();
        var output = module.call(randn(input.WithBatch(2)));
        Assert.Equal(output.shape.Skip(1), operation.OutputShape([input]).Dimensions);
    }

    [Fact]
    public void DataflowOperationsHaveTheShapesOfTheirTensorOperations()
    {
        using var scope = NewDisposeScope();
        var a = randn(2, 6, 5, 4);
        var b = randn(2, 10, 5, 4);
        Assert.Equal(a.add(a).shape.Skip(1), new AddOp().OutputShape([Shape(a), Shape(a)]).Dimensions);
        Assert.Equal(cat([a, b], 1).shape.Skip(1), new ConcatOp().OutputShape([Shape(a), Shape(b)]).Dimensions);
        Assert.Equal(b.chunk(2, 1)[1].shape.Skip(1), new ChunkOp(2, 1).OutputShape([Shape(b)]).Dimensions);
        Assert.Equal(b.shape.Skip(1), new ChannelShuffleOp(2).OutputShape([Shape(b)]).Dimensions);

        Assert.Throws<ArgumentException>(() => new AddOp().OutputShape([Shape(a), Shape(b)]));
        Assert.Throws<ArgumentException>(() => new ConcatOp().OutputShape([Shape(a), TensorShape.Map(6, 4, 4)]));
        Assert.Throws<ArgumentException>(() => new ChunkOp(4, 0).OutputShape([Shape(a)]));
        Assert.Throws<ArgumentException>(() => new ChannelShuffleOp(4).OutputShape([Shape(b)]));
    }

    private static TensorShape Shape(Tensor tensor) => new(tensor.shape.Skip(1).ToArray());

    [Fact]
    public void AnInputTheModuleRejectsIsRejected()
    {
        Assert.Contains("built for 24 channels, but its input has 3", Assert.Throws<ArgumentException>(() => new Conv2dOp(24, 8, 3).OutputShape([TensorShape.Map(3, 8, 8)])).Message);
        Assert.Contains("does not fit an input of size 2", Assert.Throws<ArgumentException>(() => new Conv2dOp(3, 8, 5).OutputShape([TensorShape.Map(3, 2, 2)])).Message);
        Assert.Contains("larger than 1x1", Assert.Throws<ArgumentException>(() => new ChannelEquilibriumOp(8).OutputShape([TensorShape.Map(8, 1, 1)])).Message);
        Assert.Contains("needs flattened features", Assert.Throws<ArgumentException>(() => new LinearOp(8, 2).OutputShape([TensorShape.Map(8, 1, 1)])).Message);
    }

    [Fact]
    public void CostsFollowNetworkSummarysConvention()
    {
        var output = TensorShape.Map(16, 5, 4);
        Assert.Equal(16 * 5 * 4 * (24 / 3) * 9, new Conv2dOp(24, 16, 3, Groups: 3).MultiplyAccumulates([Map], output));
        Assert.Equal(10 * 24, new LinearOp(24, 10).MultiplyAccumulates([Features], TensorShape.Features(10)));
        var ce = new ChannelEquilibriumOp(16, GroupSize: 8, Reduction: 4);
        Assert.Equal(16 * 8 * 20 + 16 * 20 + 2 * 16 * 4, ce.MultiplyAccumulates([output], output));
        Assert.Equal(output.Elements, new BatchNorm2dOp(16).ElementwiseOperations(output));
        Assert.Equal(0, new AddOp().MultiplyAccumulates([output, output], output));
    }
}
