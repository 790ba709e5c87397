using CeDsl.Training;

namespace CeDsl.Training.Tests.Training;

/// <summary>The name a folded checkpoint records: its network's, with the folded suffix.</summary>
public class FoldedCheckpointTests
{
    [Fact]
    public void A_folded_checkpoint_names_its_network_and_says_it_is_folded()
    {
        using var directory = new TemporaryDirectory();
        using var model = TinyConvNet.Create(seed: 1);

        Checkpoint.SaveFolded(directory.File("folded.safetensors"), model, "tiny-net");
        Checkpoint.SaveModel(directory.File("trained.safetensors"), model, "tiny-net");

        var folded = Checkpoint.ReadInfo(directory.File("folded.safetensors"));
        Assert.Equal("tiny-net/folded", folded.Architecture);
        Assert.True(folded.IsFolded);
        Assert.Equal("tiny-net", folded.Network);
        var trained = Checkpoint.ReadInfo(directory.File("trained.safetensors"));
        Assert.Equal("tiny-net", trained.Architecture);
        Assert.False(trained.IsFolded);
        Assert.Equal("tiny-net", trained.Network);
    }

    [Fact]
    public void A_folded_checkpoint_loads_only_as_the_folded_form()
    {
        using var directory = new TemporaryDirectory();
        using var model = TinyConvNet.Create(seed: 1);
        string path = directory.File("folded.safetensors");
        Checkpoint.SaveFolded(path, model, "tiny-net");

        using var target = TinyConvNet.Create(seed: 2);
        var error = Assert.Throws<CheckpointMismatchException>(() => Checkpoint.LoadModel(path, target, "tiny-net"));
        Assert.Contains("tiny-net/folded", error.Message);
        Checkpoint.LoadModel(path, target, "tiny-net" + Checkpoint.FoldedSuffix);
        Assert.Equal(TinyConvNet.Snapshot(model), TinyConvNet.Snapshot(target));
    }
}
