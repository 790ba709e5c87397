using CeDsl.Analysis;
using CeDsl.IO;
using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Generator.Tests.Folding;

/// <summary>
/// Fold() of a network with pruning-only selective convolutions (K = 0): after training and a dealloc
/// that closes channels, the folded network holds PrunedSelectiveConv2d layers without the closed
/// channels, is smaller by what SelectivePruning.Export reports, computes the same outputs, and saves
/// and loads into a freshly built Folded network.
/// </summary>
public class PruningFoldingTests
{
    private static readonly long[] InputShape = { 4, 3, 16, 16 };

    /// <summary>
    /// A FoldPruningNet after a few SGD steps, BN scales spread and a dealloc at gamma 0.2 (re-allocation in the K = 3
    /// layers), in evaluation mode. Trained in float64, then converted: in float32 this machine's libtorch gives NaN
    /// gradients now and then in pre-activation networks like this one (with or without selective convolutions).
    /// </summary>
    private static FoldPruningNet Trained(ScalarType dtype, int seed)
    {
        manual_seed(seed);
        var network = new FoldPruningNet(dtype: ScalarType.Float64);
        network.train();
        using (var optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9))
        {
            for (int step = 0; step < 3; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                var input = randn(InputShape, dtype: ScalarType.Float64) * 2 + 0.5;
                var labels = randint(10, new long[] { InputShape[0] }, dtype: ScalarType.Int64);
                nn.functional.cross_entropy(network.call(input), labels).backward();
                optimizer.step();
            }
        }
        // Three steps leave the channels about equally important; spread the BN scales as longer training
        // does, so that the dealloc rule has unimportant channels to release.
        using (no_grad())
        {
            foreach (var layer in network.modules().OfType<SelectiveConv2d>())
            {
                var scale = layer.named_parameters().Single(p => p.name == "norm.weight").parameter;
                scale.mul_(rand_like(scale).pow(2) * 2);
            }
        }
        var random = new Random(seed);
        foreach (var layer in network.modules().OfType<SelectiveConv2d>())
        {
            layer.Gamma = 0.2;
            layer.Dealloc();
            layer.Realloc(random);
        }
        Assert.All(network.parameters(), p => Assert.False(p.isnan().any().item<bool>()));
        network.to(dtype);
        network.eval();
        return network;
    }

    private static IEnumerable<(string Path, SelectiveConv2d Layer)> PruningLayers(nn.Module network) =>
        network.named_modules().Where(m => m.module is SelectiveConv2d { K: 0 }).Select(m => (m.name, (SelectiveConv2d)m.module));

    private static long Parameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    private static double RelativeError(Tensor actual, Tensor expected) =>
        (actual - expected).abs().max().to(ScalarType.Float64).item<double>() / expected.abs().max().to(ScalarType.Float64).item<double>();

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Theory]
    [InlineData(ScalarType.Float32, 1e-4)]
    [InlineData(ScalarType.Float64, 1e-10)]
    public void FoldedNetworkIsSmallerByTheExportedSavingsAndComputesTheSameOutputs(ScalarType dtype, double tolerance)
    {
        using var network = Trained(dtype, seed: 21);
        var pruning = PruningLayers(network).ToList();
        Assert.Equal(6, pruning.Count);
        Assert.Contains(pruning, p => p.Layer.OpenChannelCount < p.Layer.InChannels);
        Assert.Contains(network.modules().OfType<SelectiveConv2d>(), l => l.CopySources().Any(source => source >= 0));
        long saved = 0;
        foreach (var (_, layer) in pruning)
        {
            using var exported = SelectivePruning.Export(layer, InputShape[2], InputShape[3]).Module;
            saved += Parameters(layer) - Parameters(exported);
        }
        Assert.True(saved > 0);

        using var folded = network.Fold();

        Assert.Equal(Parameters(network) - saved, Parameters(folded));
        var foldedLayers = folded.named_modules().Where(m => m.module is PrunedSelectiveConv2d).ToDictionary(m => m.name, m => (PrunedSelectiveConv2d)m.module);
        Assert.Equal(pruning.Select(p => p.Path).Order(), foldedLayers.Keys.Order());
        foreach (var (path, layer) in pruning)
            Assert.Equal(layer.OpenChannelCount, foldedLayers[path].KeptChannels);
        // The K = 3 layers (holding shifted copies) stay selective convolutions.
        Assert.Equal(3, folded.modules().OfType<SelectiveConv2d>().Count());
        // The summary already counts only the open channels of a gated layer: the physical network costs the same MACs.
        Assert.Equal(NetworkSummary.Of(network, InputShape[1..]).MultiplyAccumulates, NetworkSummary.Of(folded, InputShape[1..]).MultiplyAccumulates);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = randn(8, 3, 16, 16, dtype: dtype) * 2 + 0.5;
        var expected = network.call(input);
        var actual = folded.call(input);
        Assert.Equal(dtype, actual.dtype);
        double error = RelativeError(actual, expected);
        Assert.True(error <= tolerance, $"relative error {error:E2} > {tolerance:E0}");
    }

    [Fact]
    public void TheFoldedNetworkSavesAndLoadsIntoAFreshlyBuiltFoldedNetwork()
    {
        using var network = Trained(ScalarType.Float32, seed: 22);
        using var folded = network.Fold();
        using var temp = new TempFile(".safetensors");
        StateDict.Save(folded, temp.Path);

        using var loaded = new FoldPruningNet.Folded();
        using (var unpruned = new TempFile(".safetensors"))
        {
            StateDict.Save(loaded, unpruned.Path);
            Assert.True(new FileInfo(temp.Path).Length < new FileInfo(unpruned.Path).Length, "the pruned file is not smaller");
        }
        Assert.True(Parameters(loaded) > Parameters(folded));
        StateDict.Load(loaded, temp.Path, strict: true);
        loaded.eval();

        Assert.Equal(Parameters(folded), Parameters(loaded));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = randn(8, 3, 16, 16);
        Assert.True(Same(folded.call(input), loaded.call(input)), "the loaded folded network gives other outputs");
    }

    [Fact]
    public void ACheckpointWithInconsistentPrunedShapesIsRefusedNamingTheKeyAndLoadsNothing()
    {
        using var network = Trained(ScalarType.Float32, seed: 23);
        using var folded = network.Fold();
        var (path, layer) = folded.named_modules().Where(m => m.module is PrunedSelectiveConv2d).Select(m => (m.name, (PrunedSelectiveConv2d)m.module))
            .First(m => m.Item2.KeptChannels > 1);
        using var scope = NewDisposeScope();
        var state = folded.state_dict().ToDictionary(e => e.Key, e => e.Value);

        // One channel fewer in the convolution than kept says.
        using (var temp = new TempFile(".safetensors"))
        {
            var conv = path + ".conv.weight";
            SafeTensors.Save(new Dictionary<string, Tensor>(state) { [conv] = state[conv].narrow(1, 0, layer.KeptChannels - 1) }, temp.Path);
            using var fresh = new FoldPruningNet.Folded();
            var before = Parameters(fresh);
            var error = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(fresh, temp.Path));
            Assert.Contains(conv, error.Message);
            Assert.Single(error.ShapeMismatches);
            Assert.Equal(conv, error.ShapeMismatches[0].Key);
            Assert.Equal(before, Parameters(fresh));
        }

        // kept must list distinct input channels in ascending order.
        using (var temp = new TempFile(".safetensors"))
        {
            var kept = path + ".kept";
            SafeTensors.Save(new Dictionary<string, Tensor>(state) { [kept] = state[kept].flip(0) }, temp.Path);
            using var fresh = new FoldPruningNet.Folded();
            var error = Assert.Throws<InvalidDataException>(() => StateDict.Load(fresh, temp.Path));
            Assert.Contains($"'{kept}'", error.Message);
            Assert.Contains("ascending", error.Message);
            Assert.Contains(temp.Path, error.Message);
        }
    }

    private sealed class TempFile(string extension) : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"cedsl-pruned-{Guid.NewGuid():N}{extension}");

        public void Dispose() => File.Delete(Path);
    }
}
