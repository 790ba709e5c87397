using CeDsl.Architecture;
using CeDsl.Folding;
using CeDsl.Networks;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Onnx.Tests;

/// <summary>What an exported file promises (names, dynamic batch, opset, metadata, operators), and the refusals that write nothing.</summary>
public sealed class OnnxExportTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("cedsl-onnx-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void The_file_has_named_input_and_output_a_dynamic_batch_opset_17_and_the_network_s_name_and_CeDsl_s_version()
    {
        using var network = TrainedNetworks.Create(Zoo.Find("ce-resnet20"), 32);
        using var folded = ((IFoldable)network).Fold();
        folded.eval();
        string path = Path.Combine(directory, "ce-resnet20.onnx");
        folded.ExportOnnx(path);

        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        var opset = Assert.Single(model.OpsetImport);
        Assert.Equal(("", 17L), (opset.Domain, opset.Version));
        Assert.Equal("CeDsl", model.ProducerName);
        Assert.All(model.Graph.Node, node => Assert.Equal("", node.Domain));
        // The folded network has no batch normalization left; its CE is the instance variance, the gate and the per-sample map.
        Assert.DoesNotContain(model.Graph.Node, node => node.OpType == "BatchNormalization");
        var ce = model.Graph.Node.Where(node => node.Output[0].StartsWith("layer1.0.ce", StringComparison.Ordinal)).Select(node => node.OpType).ToHashSet();
        Assert.Superset(new HashSet<string> { "ReduceMean", "ReduceSumSquare", "Gemm", "LayerNormalization", "Relu", "Sigmoid", "MatMul" }, ce);

        using var runtime = new OnnxRuntimeModel(File.ReadAllBytes(path), optimize: true);
        Assert.Equal(["input"], runtime.InputNames);
        Assert.Equal(["logits"], runtime.OutputNames);
        Assert.Equal([-1, 3, 32, 32], runtime.InputMetadata["input"].Dimensions);
        Assert.Equal("batch", runtime.InputMetadata["input"].SymbolicDimensions[0]);
        Assert.Equal([-1, 10], runtime.OutputMetadata["logits"].Dimensions);
        Assert.Equal("CeResNet20.Folded", runtime.Metadata[OnnxExport.NetworkKey]);
        Assert.Equal(OnnxExport.CeDslVersion, runtime.Metadata[OnnxExport.VersionKey]);
        Assert.Matches(@"^\d+\.\d+\.\d+", OnnxExport.CeDslVersion);
    }

    [Fact]
    public void A_network_built_with_other_classes_and_input_channels_is_described_as_built()
    {
        using var network = new CeResNet20(classes: 7, inChannels: 1);
        network.eval();
        var architecture = OnnxExport.ArchitectureOf(network, 28, 28);
        Assert.Equal(TensorShape.Map(1, 28, 28), architecture.Input);
        Assert.Equal(TensorShape.Features(7), architecture.Output);
        Assert.Equal(CeResNet20.DescribeArchitecture(classes: 7, inChannels: 1, inputHeight: 28, inputWidth: 28).ToString(), architecture.ToString());

        using var handWritten = nn.Sequential(nn.Conv2d(1, 4, 3));
        var error = Assert.Throws<ArgumentException>(() => OnnxExport.ArchitectureOf(handWritten));
        Assert.Contains("Sequential is not a generated network", error.Message);
        Assert.Contains("network.ExportOnnx(architecture, path)", error.Message);
    }

    /// <summary>An operation the exporter does not know: a user's own.</summary>
    private sealed record SoftsignOp : Operation
    {
        public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs) => inputs[0];
    }

    [Fact]
    public void An_operation_without_an_ONNX_form_is_refused_naming_the_layer_and_nothing_is_written()
    {
        var builder = new ArchitectureBuilder("Custom", TensorShape.Map(3, 8, 8));
        var conv = builder.Root.Module("features.conv", new Conv2dOp(3, 4, 3, Padding: 1, Bias: false), builder.Input);
        var soft = builder.Root.Module("features.soft", new SoftsignOp(), conv);
        var architecture = builder.Build(soft);
        using var weight = randn(4, 3, 3, 3);
        var state = new Dictionary<string, Tensor> { ["features.conv.weight"] = weight };

        var error = Assert.Throws<OnnxExportException>(() => OnnxExport.ToModel(architecture, state));
        Assert.Equal("features.soft", error.Node);
        Assert.Equal("features.soft", error.Module);
        Assert.Contains("node 'features.soft' (module 'features.soft') is a Softsign, which has no ONNX form", error.Message);

        // Adaptive average pooling with windows of different sizes has no ONNX operator either.
        var pooling = new ArchitectureBuilder("Pooling", TensorShape.Map(3, 7, 7));
        var pooled = pooling.Root.Module("pool", new AdaptiveAvgPool2dOp(3, 3), pooling.Input);
        var poolError = Assert.Throws<OnnxExportException>(() => OnnxExport.ToModel(pooling.Build(pooled), new Dictionary<string, Tensor>()));
        Assert.Equal("pool", poolError.Node);
        Assert.Contains("AdaptiveAvgPool2d from 7x7 to 3x3", poolError.Message);
    }

    [Fact]
    public void A_CE_that_never_trained_is_refused_naming_the_layer_and_the_destination_is_left_unchanged()
    {
        string path = Path.Combine(directory, "untrained.onnx");
        File.WriteAllText(path, "the previous model");
        using var network = new CeResNet20();
        network.eval();

        var error = Assert.Throws<OnnxExportException>(() => network.ExportOnnx(path));
        Assert.Equal("ce1", error.Module);
        Assert.Contains("AR.running_scale is 0", error.Message);
        Assert.Contains("nothing was written", error.Message);
        Assert.Equal("the previous model", File.ReadAllText(path));
        Assert.Equal([Path.GetFileName(path)], Directory.GetFiles(directory).Select(Path.GetFileName));
    }

    [Fact]
    public void A_network_in_training_mode_or_with_another_architecture_is_refused()
    {
        string path = Path.Combine(directory, "refused.onnx");
        using var network = TrainedNetworks.Create(Zoo.Find("resnet20"), 32);
        network.train();
        var training = Assert.Throws<InvalidOperationException>(() => network.ExportOnnx(path));
        Assert.Contains("training mode", training.Message);

        network.eval();
        var other = Assert.Throws<OnnxExportException>(() => network.ExportOnnx(ResNet20.DescribeArchitecture(classes: 7), path));
        Assert.Contains("the state dict does not fit the architecture: 'fc.weight' is [10, 64], described [7, 64]", other.Message);
        Assert.False(File.Exists(path));
    }
}
