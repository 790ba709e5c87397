using CeDsl.Architecture;
using CeDsl.Folding;
using CeDsl.Networks;
using Google.Protobuf;
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
        // The folded network has no batch normalization left; its CE is the instance variance, the gate, the shared map
        // as a grouped convolution and the per-sample diagonal as a product with the spread factor.
        Assert.DoesNotContain(model.Graph.Node, node => node.OpType == "BatchNormalization");
        var ce = model.Graph.Node.Where(node => node.Output[0].StartsWith("layer1.0.ce", StringComparison.Ordinal)).Select(node => node.OpType).ToHashSet();
        Assert.Equal(new HashSet<string> { "GlobalAveragePool", "Mul", "Sub", "Reshape", "Gemm", "LayerNormalization", "Relu", "Sigmoid", "Conv", "Resize", "Add" }, ce);

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

    /// <summary>
    /// ONNX Runtime runs convolutions in a blocked channel layout (NCHWc) and converts an activation back to NCHW
    /// (ReorderOutput) for any operator without a blocked form, and forward again (ReorderInput) for the next convolution;
    /// on a full-size activation each conversion costs about as much as the operator it serves. The folded CE is written
    /// so that none is needed: ONNX Runtime reorders the same full-size activations in the folded CE-ResNet-20 as in the
    /// folded ResNet-20 (only the CE's (N, C, 1, 1) statistics and factors are converted). The previous form, a per-sample
    /// MatMul, reorders every CE's input; the test tells the two apart.
    /// </summary>
    [Fact]
    public void ONNX_Runtime_runs_the_folded_CE_in_the_blocked_layout_of_the_convolutions_without_reordering_activations()
    {
        using var network = TrainedNetworks.Create(Zoo.Find("ce-resnet20"), 32);
        using var folded = ((IFoldable)network).Fold();
        folded.eval();
        var architecture = OnnxExport.ArchitectureOf(folded);
        using var plain = TrainedNetworks.Create(Zoo.Find("resnet20"), 32);
        using var plainFolded = ((IFoldable)plain).Fold();
        plainFolded.eval();

        var baseline = ReorderedActivations(OnnxExport.ToModel(OnnxExport.ArchitectureOf(plainFolded), plainFolded.state_dict()), "baseline");
        var blocked = ReorderedActivations(OnnxExport.ToModel(architecture, folded.state_dict()), "blocked");
        var previous = ReorderedActivations(OnnxExport.ToModel(architecture, folded.state_dict(), new OnnxExportOptions { PerSampleMatrices = true }), "previous");

        Assert.True(previous.Count > baseline.Count, $"the previous form reorders {string.Join(", ", previous)}; the baseline {string.Join(", ", baseline)}");
        Assert.Equal(baseline, blocked);
    }

    /// <summary>
    /// The shapes of the activations of more than one position that ONNX Runtime (all graph optimizations) converts
    /// between NCHW and its blocked layout in one pass of <paramref name="model"/> on a (2, 3, 32, 32) batch, read from
    /// its profile; sorted.
    /// </summary>
    private List<string> ReorderedActivations(ModelProto model, string label)
    {
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions
        {
            GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = 1,
            EnableProfiling = true,
            ProfileOutputPathPrefix = Path.Combine(directory, label),
        };
        string file;
        using (var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model.ToByteArray(), options))
        {
            long[] shape = [2, 3, 32, 32];
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(new float[2 * 3 * 32 * 32], shape);
            using var run = new Microsoft.ML.OnnxRuntime.RunOptions();
            using (session.Run(run, [session.InputNames[0]], [input], [session.OutputNames[0]]))
            {
            }
            file = session.EndProfiling();
        }
        using var profile = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
        var reorders = profile.RootElement.EnumerateArray()
            .Where(e => e.GetProperty("cat").GetString() == "Node" && e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal))
            .Select(e => e.GetProperty("args"))
            .Where(a => a.GetProperty("op_name").GetString() is "ReorderInput" or "ReorderOutput")
            .Select(a => a.GetProperty("output_type_shape")[0].EnumerateObject().First().Value.EnumerateArray().Select(d => d.GetInt64()).ToArray())
            .ToList();
        // On x64 (AVX2 or AVX-512) ONNX Runtime runs the convolutions blocked and reorders at least the pooled features;
        // without the blocked layout the test would show nothing.
        Assert.NotEmpty(reorders);
        return reorders.Where(dims => dims.Skip(2).Aggregate(1L, (a, b) => a * b) > 1)
            .Select(dims => "[" + string.Join(", ", dims) + "]").Order(StringComparer.Ordinal).ToList();
    }

    [Fact]
    public void The_preprocessing_is_in_the_metadata_and_a_mismatched_one_is_refused()
    {
        // Without CE, whose untrained running scale the exporter refuses: the metadata is the point here.
        using var network = new ResNet20(classes: 2, inChannels: 1);
        network.eval();
        string path = Path.Combine(directory, "preprocessed.onnx");
        var options = new OnnxExportOptions { Metadata = new Dictionary<string, string> { ["owner"] = "tests" } }
            .WithPreprocessing([0.25], [0.125], padTo: 32, classes: ["cat", "dog"]);
        network.ExportOnnx(path, options, inputHeight: 28, inputWidth: 28);

        using var runtime = new OnnxRuntimeModel(File.ReadAllBytes(path), optimize: false);
        Assert.Equal("0.25", runtime.Metadata[OnnxExportOptions.InputMeanKey]);
        Assert.Equal("0.125", runtime.Metadata[OnnxExportOptions.InputStdKey]);
        Assert.Equal("32", runtime.Metadata[OnnxExportOptions.InputPadToKey]);
        Assert.Equal("cat,dog", runtime.Metadata[OnnxExportOptions.ClassesKey]);
        Assert.Equal("tests", runtime.Metadata["owner"]);

        var counts = Assert.Throws<ArgumentException>(() => new OnnxExportOptions().WithPreprocessing([0.5, 0.5], [0.25]));
        Assert.Contains("got 2 means and 1 standard deviations", counts.Message);
        var zero = Assert.Throws<ArgumentException>(() => new OnnxExportOptions().WithPreprocessing([0.5], [0.0]));
        Assert.Contains("must be positive, got [0]", zero.Message);
        Assert.Throws<ArgumentException>(() => new OnnxExportOptions().WithPreprocessing([], []));
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
