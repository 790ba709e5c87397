using CeDsl.Analysis;
using CeDsl.Folding;
using CeDsl.Selective;
using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// prune-preresnet29 (K = 0 everywhere) after channels were released: Fold() exports the physically smaller
/// network, smaller by what SelectivePruning.Export reports per layer, with the same outputs; its checkpoint
/// loads into the empty folded network ZooEntry.CreateFolded builds.
/// </summary>
public class PrunedFoldingTests
{
    private const string Name = "prune-preresnet29";

    /// <summary>
    /// The network with perturbed parameters, estimated running statistics and BN scales spread (as training
    /// leaves them), then a dealloc at gamma 0.1 in every layer; in evaluation mode.
    /// </summary>
    private static nn.Module<Tensor, Tensor> Released(ScalarType dtype)
    {
        var entry = Zoo.Find(Name);
        var generator = new Generator(31);
        var network = entry.Create(dtype: dtype);
        using (no_grad())
        {
            foreach (var parameter in network.parameters().Where(p => p.dim() == 1))
                parameter.mul_(rand(parameter.shape, dtype: dtype, generator: generator) * 0.4 + 0.8).add_(randn(parameter.shape, dtype: dtype, generator: generator) * 0.05);
            network.train();
            network.call(randn([8, .. entry.InputShape], dtype: dtype, generator: generator) * 2 + 0.5).Dispose();
            // Spread the selective layers' BN scales as training does, so that dealloc finds unimportant channels.
            foreach (var layer in network.modules().OfType<SelectiveConv2d>())
            {
                var scale = layer.named_parameters().Single(p => p.name == "norm.weight").parameter;
                scale.mul_(rand(scale.shape, dtype: dtype, generator: generator).pow(2) * 2);
            }
        }
        foreach (var layer in network.modules().OfType<SelectiveConv2d>())
        {
            layer.Gamma = 0.1;
            layer.Dealloc();
        }
        network.eval();
        return network;
    }

    private static long Parameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    /// <remarks>
    /// In float32 too: the pruned 3x3 layers have widths (e.g. 29 of 32 channels) that libtorch 2.10's oneDNN
    /// convolves wrongly on some CPUs; folding resizes them through PrunedSelectiveConv2d, which calls
    /// OneDnnGuard.Protect, so the float32 comparison holds on such a CPU as well.
    /// </remarks>
    [Theory]
    [InlineData(ScalarType.Float64, 1e-10)]
    [InlineData(ScalarType.Float32, 1e-4)]
    public void TheFoldedNetworkIsSmallerByTheExportedSavingsAndComputesTheSameOutputs(ScalarType dtype, double tolerance)
    {
        using var network = Released(dtype);
        var layers = network.modules().OfType<SelectiveConv2d>().ToList();
        Assert.Equal(27, layers.Count);
        long released = layers.Sum(l => l.InChannels - l.OpenChannelCount);
        Assert.True(released > 0);
        long saved = 0;
        foreach (var layer in layers)
        {
            // The savings do not depend on the input size; the layers' own input sizes are not needed here.
            using var exported = SelectivePruning.Export(layer, 32, 32).Module;
            saved += Parameters(layer) - Parameters(exported);
        }

        using var folded = ((IFoldable)network).Fold();

        Assert.Equal(Parameters(network) - saved, Parameters(folded));
        Assert.Equal(released, folded.modules().OfType<PrunedSelectiveConv2d>().Sum(l => l.InChannels - l.KeptChannels));
        Assert.Empty(folded.modules().OfType<SelectiveConv2d>());
        var shape = Zoo.Find(Name).InputShape;
        Assert.Equal(NetworkSummary.Of(network, shape).MultiplyAccumulates, NetworkSummary.Of(folded, shape).MultiplyAccumulates);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = randn([4, .. shape], dtype: dtype, generator: new Generator(32)) * 2 + 0.5;
        var expected = network.call(input);
        var actual = folded.call(input);
        double error = (actual - expected).abs().max().ToDouble() / expected.abs().max().ToDouble();
        Assert.True(error <= tolerance, $"relative error {error:E2} > {tolerance:E0}");
    }

    [Fact]
    public void TheFoldedCheckpointLoadsIntoTheEmptyFoldedNetworkOfTheZooWithTheSameState()
    {
        var entry = Zoo.Find(Name);
        using var network = Released(ScalarType.Float32);
        using var folded = ((IFoldable)network).Fold();
        string path = Path.Combine(Path.GetTempPath(), $"cedsl-pruned-{Guid.NewGuid():N}.safetensors");
        try
        {
            Checkpoint.SaveModel(path, folded, Name + "/folded");
            using var loaded = entry.CreateFolded();
            Checkpoint.LoadModel(path, loaded, Name + "/folded");
            loaded.eval();
            Assert.Equal(Parameters(folded), Parameters(loaded));

            var expected = folded.state_dict();
            var actual = loaded.state_dict();
            Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
            foreach (var (key, value) in expected)
            {
                Assert.Equal(value.dtype, actual[key].dtype);
                Assert.True(value.shape.SequenceEqual(actual[key].shape) && value.eq(actual[key]).all().item<bool>(), $"{key} differs");
            }
            Assert.Contains(loaded.modules().OfType<PrunedSelectiveConv2d>(), layer => layer.KeptChannels < layer.InChannels);

            // The unfolded network is not resized: its shapes are fixed.
            using var unfolded = entry.Create();
            var error = Assert.Throws<CheckpointMismatchException>(() => Checkpoint.LoadModel(path, unfolded, Name + "/folded"));
            Assert.Contains(error.Mismatches, mismatch => mismatch.Contains(".kept'", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
