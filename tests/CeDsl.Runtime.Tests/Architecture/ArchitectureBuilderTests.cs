using CeDsl.Architecture;

namespace CeDsl.Runtime.Tests.Architecture;

/// <summary>How an architecture is built: names, scopes, shapes, state and the errors that name the node.</summary>
public class ArchitectureBuilderTests
{
    /// <summary>A residual block: conv1 -> bn1 -> relu -> conv2 -> + input -> relu (the shared relu called twice).</summary>
    private static ModuleArchitecture Residual(string scope)
    {
        var builder = new ArchitectureBuilder("Net", TensorShape.Map(8, 6, 6));
        var root = builder.Root;
        var block = scope.Length == 0 ? root : root.Within(scope);
        var x = block.Module("conv1", new Conv2dOp(8, 8, 3, Padding: 1, Bias: false), builder.Input);
        x = block.Module("bn1", new BatchNorm2dOp(8), x);
        x = block.Module("relu", new ReLUOp(), x);
        x = block.Module("conv2", new Conv2dOp(8, 8, 3, Padding: 1, Bias: false), x);
        x = block.Apply(new AddOp(), x, builder.Input);
        x = block.Module("relu", new ReLUOp(), x);
        return builder.Build(x);
    }

    [Fact]
    public void NodesAreNamedByModulePathAndDataflowNodesByScope()
    {
        var architecture = Residual("layer1.0");
        Assert.Equal(["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.add", "layer1.0.relu:2"], architecture.Nodes.Select(n => n.Name));
        Assert.Equal(["layer1.0.conv2", ModuleArchitecture.InputName], architecture["layer1.0.add"].Inputs);
        Assert.Null(architecture["layer1.0.add"].Module);
        Assert.Equal("layer1.0.relu", architecture["layer1.0.relu:2"].Module);
        Assert.Equal(["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2"], architecture.Modules);
        Assert.Equal("layer1.0.relu:2", architecture.OutputName);
        Assert.Equal(TensorShape.Map(8, 6, 6), architecture.Output);
    }

    [Fact]
    public void TheStateIsEveryModulesStateOnceUnderItsPath()
    {
        var architecture = Residual("");
        Assert.Equal(["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "conv2.weight"],
            architecture.State.Select(s => s.Key));
        Assert.Equal(2 * 8 * 8 * 9 + 2 * 8, architecture.Parameters);
        Assert.Equal(2 * 8 * 36 * 8 * 9, architecture.MultiplyAccumulates);
        Assert.Equal(3 * 8 * 36, architecture.ElementwiseOperations);
    }

    [Fact]
    public void AnOperationThatDoesNotFitItsInputNamesTheNode()
    {
        var builder = new ArchitectureBuilder("Net", TensorShape.Map(8, 6, 6));
        var x = builder.Root.Within("layer1.0").Module("conv1", new Conv2dOp(8, 4, 1), builder.Input);
        var error = Assert.Throws<ArgumentException>(() => builder.Root.Apply(new AddOp(), x, builder.Input));
        Assert.StartsWith("Net: node 'add' does not fit its input (4x6x6, 8x6x6): Add needs two inputs of the same shape", error.Message);
    }

    [Fact]
    public void AModuleHasOneOperationAndValuesBelongToTheirBuilder()
    {
        var builder = new ArchitectureBuilder("Net", TensorShape.Map(8, 6, 6));
        var x = builder.Root.Module("relu", new ReLUOp(), builder.Input);
        Assert.Contains("module 'relu' is called as", Assert.Throws<ArgumentException>(() => builder.Root.Module("relu", new ReLU6Op(), x)).Message);

        var other = new ArchitectureBuilder("Other", TensorShape.Map(8, 6, 6));
        var foreign = other.Root.Module("conv", new Conv2dOp(8, 8, 1), other.Input);
        Assert.Contains("'conv' is not a value of this architecture", Assert.Throws<ArgumentException>(() => builder.Build(foreign)).Message);
    }

    [Fact]
    public void AModuleThatComputesNothingReturnsItsInput()
    {
        var builder = new ArchitectureBuilder("Empty", TensorShape.Features(3));
        var architecture = builder.Build(builder.Input);
        Assert.Empty(architecture.Nodes);
        Assert.Equal(ModuleArchitecture.InputName, architecture.OutputName);
        Assert.Equal(TensorShape.Features(3), architecture.Output);
    }
}
