using CeDsl.Selective;
using TorchSharp;
using Xunit.Abstractions;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

public class PruningTests(ITestOutputHelper output)
{
    [Fact]
    public void Exported_layer_computes_the_gated_function_with_fewer_parameters_and_MACs()
    {
        const int inputs = 16, outputs = 8, kernel = 3, side = 12;
        using var scope = NewDisposeScope();
        var generator = new Generator(1001);
        using var layer = new SelectiveConv2d(inputs, outputs, kernelSize: kernel, stride: 2, gamma: 0.05, k: 0, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        var dealloc = layer.Dealloc();
        int kept = inputs - dealloc.NewlyClosed.Count;
        Assert.InRange(kept, 1, inputs - 3);
        var input = randn(new long[] { 5, inputs, side, side }, ScalarType.Float64, generator: generator);
        layer.eval();

        var exported = SelectivePruning.Export(layer, side, side);
        var pruned = exported.Module;

        var expected = layer.call(input);
        Assert.True(expected.allclose(pruned.call(input), rtol: 0, atol: 1e-10), "eval-mode outputs differ");
        layer.train();
        pruned.train();
        Assert.True(layer.call(input).allclose(pruned.call(input), rtol: 0, atol: 1e-10), "train-mode outputs differ");

        // Independent counts: conv O x I x 3 x 3 plus BN weight and bias per kept channel; MACs per image are
        // O x I x 3 x 3 per output position, and the output is 6 x 6 (stride 2, padding 1).
        Assert.Equal(new long[] { 5, outputs, 6, 6 }, expected.shape);
        long ParametersFor(long channels) => outputs * channels * kernel * kernel + 2 * channels;
        long MacsFor(long channels) => outputs * channels * kernel * kernel * 6 * 6;
        var report = exported.Report;
        output.WriteLine(report.ToString());
        Assert.Equal(new PruningReport(inputs, kept, ParametersFor(inputs), ParametersFor(kept), MacsFor(inputs), MacsFor(kept)), report);
        Assert.Equal(ParametersFor(inputs - kept), report.ParametersSaved);
        Assert.Equal(MacsFor(inputs - kept), report.MacsSaved);
        Assert.Equal(report.ParametersAfter, pruned.parameters().Sum(p => p.numel()));
        Assert.Equal(new long[] { outputs, kept, kernel, kernel }, State(pruned, "conv.weight").shape);
        Assert.Equal(new long[] { kept }, State(pruned, "norm.running_var").shape);
        Assert.Equal(ScalarType.Float64, State(pruned, "conv.weight").dtype);
    }

    [Fact]
    public void Layer_without_copies_of_a_K_positive_layer_exports_and_drops_the_shift_parameters()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1002);
        using var layer = new SelectiveConv2d(6, 3, kernelSize: 1, gamma: 0.05, k: 2);
        RandomizeState(layer, generator);
        layer.Dealloc();
        long kept = layer.OpenChannelCount;

        var report = SelectivePruning.Export(layer, 4, 4).Report;

        Assert.Equal(3 * 6 + 2 * 6 + 2 * 6, report.ParametersBefore);   // conv, BN affine, _bias
        Assert.Equal(3 * kept + 2 * kept, report.ParametersAfter);
    }

    [Fact]
    public void Layer_holding_shifted_copies_cannot_be_exported()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1003);
        using var layer = new SelectiveConv2d(10, 3, kernelSize: 1, gamma: 0.05, k: 2);
        RandomizeState(layer, generator);
        layer.Dealloc();
        Assert.NotEmpty(layer.Realloc(new Random(1)).Copies);

        var error = Assert.Throws<InvalidOperationException>(() => SelectivePruning.Export(layer, 8, 8));
        Assert.Contains("SelectiveConv2d(10 -> 3)", error.Message);
        Assert.Contains("re-allocated", error.Message);
    }

    [Fact]
    public void Built_with_every_channel_kept_it_is_the_ungated_layer_and_PruneFrom_needs_the_same_geometry()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1004);
        using var layer = new SelectiveConv2d(6, 4, kernelSize: 3, stride: 2, k: 0, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        layer.eval();
        using var full = new PrunedSelectiveConv2d(6, 4, kernelSize: 3, stride: 2, dtype: ScalarType.Float64);
        Assert.Equal(6, full.KeptChannels);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 5 }, Longs(State(full, "kept")));
        Assert.Equal(ScalarType.Int64, State(full, "norm.num_batches_tracked").dtype);
        full.PruneFrom(layer);
        full.eval();
        var input = randn(new long[] { 2, 6, 7, 7 }, ScalarType.Float64, generator: generator);
        Assert.True(layer.call(input).allclose(full.call(input), rtol: 0, atol: 1e-10));

        using var otherStride = new PrunedSelectiveConv2d(6, 4, kernelSize: 3, dtype: ScalarType.Float64);
        var error = Assert.Throws<InvalidOperationException>(() => otherStride.PruneFrom(layer, "Cannot fold block.conv: "));
        Assert.StartsWith("Cannot fold block.conv: ", error.Message);
        Assert.Contains("same arguments", error.Message);
        Assert.Equal(6, otherStride.KeptChannels);
    }
}
