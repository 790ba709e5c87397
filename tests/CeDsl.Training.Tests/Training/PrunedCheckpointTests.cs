using CeDsl.Runtime.Tests.IO;
using CeDsl.Selective;
using CeDsl.Training;
using TorchSharp;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Training;

/// <summary>Checkpoints of pruned selective layers, whose state decides their size.</summary>
public class PrunedCheckpointTests
{
    [Fact]
    public void A_checkpoint_of_a_pruned_layer_loads_into_a_full_size_layer_and_inconsistent_shapes_are_refused_by_key()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1005);
        using var layer = new SelectiveConv2d(12, 5, kernelSize: 1, gamma: 0.1, k: 0);
        RandomizeState(layer, generator);
        layer.Dealloc();
        layer.eval();
        using var pruned = SelectivePruning.Export(layer, 4, 4).Module;
        Assert.InRange(pruned.KeptChannels, 1, 11);
        using var directory = new TempDirectory();
        string path = Path.Combine(directory.Path, "pruned.safetensors");
        Checkpoint.SaveModel(path, pruned, "pruned-layer");

        using var fresh = new PrunedSelectiveConv2d(12, 5, kernelSize: 1);
        Checkpoint.LoadModel(path, fresh, "pruned-layer");
        fresh.eval();
        Assert.Equal(pruned.KeptChannels, fresh.KeptChannels);
        var input = randn(new long[] { 3, 12, 4, 4 }, generator: generator);
        Assert.True(pruned.call(input).eq(fresh.call(input)).all().item<bool>());

        var state = pruned.state_dict();
        string inconsistent = Path.Combine(directory.Path, "inconsistent.safetensors");
        Checkpoint.Write(inconsistent, "pruned-layer",
            [.. state.Select(e => (Checkpoint.ModelPrefix + e.Key, e.Key == "norm.running_var" ? e.Value.narrow(0, 0, pruned.KeptChannels - 1) : e.Value))], training: null);
        using var untouched = new PrunedSelectiveConv2d(12, 5, kernelSize: 1);
        var error = Assert.Throws<CheckpointMismatchException>(() => Checkpoint.LoadModel(inconsistent, untouched, "pruned-layer"));
        Assert.Equal(["'norm.running_var': the checkpoint has [" + (pruned.KeptChannels - 1) + "] Float32, the model [" + pruned.KeptChannels + "] Float32"], error.Mismatches);
        Assert.Equal(12, untouched.KeptChannels);
    }
}
