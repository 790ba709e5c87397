using CeDsl.Architecture;
using CeDsl.Networks;
using CeDsl.PyTorch;

namespace CeDsl.Python.Tests.Export;

/// <summary>
/// How <see cref="PyTorchExport"/> writes a module: classes for blocks, parameters for what differs between blocks of a
/// class, Sequentials, dataflow, literals, and its errors. That what it writes computes what the TorchSharp modules
/// compute is <see cref="ZooTwins.ZooTwinTests"/>' part.
/// </summary>
public sealed class PyTorchExportTests
{
    private static string ResNet20(bool withTypes)
    {
        var architecture = ResNet20Architecture();
        if (!withTypes) return PyTorchExport.ToPython(architecture);
        using var network = new CeDsl.Networks.ResNet20(classes: 10, inChannels: 1);
        return PyTorchExport.ToPython(architecture, PyTorchExportOptions.For(network, Init.TorchVision));
    }

    private static ModuleArchitecture ResNet20Architecture() => CeDsl.Networks.ResNet20.DescribeArchitecture(classes: 10, inChannels: 1);

    [Fact]
    public void Blocks_of_one_class_become_one_Python_class_with_a_parameter_for_each_value_that_differs()
    {
        string source = ResNet20(withTypes: true);

        // Blocks without a downsample keep their channels; the others take both counts (their stride is 2 in each).
        Assert.Contains("""
            class BasicBlock(nn.Module):
                def __init__(self, channels):
                    super().__init__()
                    self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            """.Replace("\r", ""), source);
        Assert.Contains("""
            class BasicBlockWithDownsample(nn.Module):
                def __init__(self, in_channels, out_channels):
                    super().__init__()
                    self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
            """.Replace("\r", ""), source);
        Assert.Contains("""
                    self.downsample = nn.Sequential(
                        nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False),
                        nn.BatchNorm2d(out_channels),
                    )
            """.Replace("\r", ""), source);
        Assert.Contains("""
                    self.layer2 = nn.Sequential(
                        BasicBlockWithDownsample(in_channels=16, out_channels=32),
                        BasicBlock(channels=32),
                        BasicBlock(channels=32),
                    )
            """.Replace("\r", ""), source);
        // The residual forward reads as torchvision's: the input stays live for the shortcut.
        Assert.Contains("""
                def forward(self, x):
                    out = self.conv1(x)
                    out = self.bn1(out)
                    out = self.relu(out)
                    out = self.conv2(out)
                    out = self.bn2(out)
                    x = self.downsample(x)
                    out = out + x
                    out = self.relu(out)
                    return out
            """.Replace("\r", ""), source);
        Assert.Equal(3, source.Split("\nclass ").Length - 1);
    }

    [Fact]
    public void Without_the_module_Sequentials_are_inferred_and_blocks_are_named_Block()
    {
        string inferred = ResNet20(withTypes: false);
        Assert.Contains("class Block(nn.Module):", inferred);
        Assert.Contains("class BlockWithDownsample(nn.Module):", inferred);
        Assert.Contains("class ResNet20(nn.Module):", inferred);
        Assert.Contains("self.layer1 = nn.Sequential(\n            Block(channels=16),", inferred);
        Assert.DoesNotContain("init_torchvision", inferred);
        // The same module otherwise.
        Assert.Equal(ResNet20(withTypes: true).Replace("BasicBlock", "Block", StringComparison.Ordinal).Replace("        cedsl_torch.init_torchvision(self)\n", "", StringComparison.Ordinal), inferred);
    }

    [Fact]
    public void Chunks_concatenations_and_channel_shuffles_are_written_as_tensor_operations()
    {
        using var network = new ShuffleNetV2X05(classes: 10, inChannels: 1);
        string source = PyTorchExport.ToPython(ShuffleNetV2X05.DescribeArchitecture(classes: 10, inChannels: 1, inputHeight: 64, inputWidth: 64),
            PyTorchExportOptions.For(network, PyTorchExportOptions.InitializationOf(typeof(ShuffleNetV2X05))));
        Assert.Contains("""
                def forward(self, x):
                    out = x.chunk(2, dim=1)[0]
                    x = x.chunk(2, dim=1)[1]
                    x = self.branch2(x)
                    out = torch.cat([out, x], dim=1)
                    out = cedsl_torch.channel_shuffle(out, 2)
                    return out
            """.Replace("\r", ""), source);
        // torchvision's ShuffleNetV2 keeps PyTorch's initialization.
        Assert.Equal(Init.Default, PyTorchExportOptions.InitializationOf(typeof(ShuffleNetV2X05)));
        Assert.DoesNotContain("init_torchvision", source);
        // Its Sequentials are numbered 0, 1, ... (CE-ShuffleNetV2's, with a "ce" among them, need an OrderedDict).
        Assert.DoesNotContain("OrderedDict", source);
    }

    [Fact]
    public void Values_are_written_as_Python_reads_them()
    {
        Assert.Equal("1e-05", PythonLiteral.Format(1e-5));
        Assert.Equal("0.1", PythonLiteral.Format(0.1));
        Assert.Equal("1.0", PythonLiteral.Format(1.0));
        Assert.Equal("0.001", PythonLiteral.Format(0.001));
        Assert.Equal("-1", PythonLiteral.Format(-1L));
        Assert.Equal("True", PythonLiteral.Format(true));
        Assert.Equal("None", PythonLiteral.Format(null));
        Assert.Equal("\"ce\"", PythonLiteral.Format("ce"));
    }

    private sealed record SquareOp : Operation
    {
        public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => inputs[0];
    }

    [Fact]
    public void An_operation_without_a_PyTorch_form_is_named_with_its_node()
    {
        var builder = new ArchitectureBuilder("Toy", TensorShape.Map(3, 8, 8));
        var x = builder.Root.Module("conv", new Conv2dOp(3, 4, 3, Padding: 1), builder.Input);
        x = builder.Root.Within("head").Module("square", new SquareOp(), x);

        var error = Assert.Throws<NotSupportedException>(() => PyTorchExport.ToPython(builder.Build(x)));
        Assert.Contains("node 'head.square' (head.square) computes Square, which has no PyTorch form", error.Message);
    }

    [Fact]
    public void A_module_that_reads_two_values_from_outside_cannot_be_a_PyTorch_module()
    {
        var builder = new ArchitectureBuilder("Toy", TensorShape.Map(4, 8, 8));
        var a = builder.Root.Module("a", new Conv2dOp(4, 4, 1), builder.Input);
        var b = builder.Root.Module("b", new Conv2dOp(4, 4, 1), builder.Input);
        var sum = builder.Root.Within("merge").Apply(new AddOp(), a, b);
        var x = builder.Root.Within("merge").Module("relu", new ReLUOp(), sum);

        var error = Assert.Throws<NotSupportedException>(() => PyTorchExport.ToPython(builder.Build(x)));
        Assert.Contains("module 'merge' reads 2 values from outside (a, b)", error.Message);
    }

    [Fact]
    public void A_declared_Sequential_whose_members_do_not_run_in_a_chain_is_refused()
    {
        var error = Assert.Throws<NotSupportedException>(() => PyTorchExport.ToPython(ResNet20Architecture(),
            new PyTorchExportOptions { Sequentials = new HashSet<string> { "layer1.0" } }));
        Assert.Contains("module 'layer1.0' is a Sequential, but its modules do not run one after the other", error.Message);
    }
}
