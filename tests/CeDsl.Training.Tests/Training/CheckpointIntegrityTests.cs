using CeDsl.Data;
using CeDsl.IO;
using CeDsl.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Training;

/// <summary>
/// Everything a checkpoint holds is checked before any of it is used: its training state is covered
/// by the SHA-256 and read strictly, and a resume that does not fit (generator state, momentum
/// buffers, images, augmentation, the caller's settings) changes nothing.
/// </summary>
[Collection(SerialTrainingCollection.Name)]
public sealed class CheckpointIntegrityTests : IDisposable
{
    private static readonly TrainingOptions Quick = new() { Epochs = 2, BatchSize = 50, LearningRate = 0.1, Seed = 5 };

    private readonly TemporaryDirectory _directory = new();
    private readonly ImageDatasetPair _data = FashionMnist.LoadEmbeddedSubset();
    private readonly DisposeScope _scope = torch.NewDisposeScope();

    public void Dispose()
    {
        _scope.Dispose();
        _data.Dispose();
        _directory.Dispose();
    }

    [Theory]
    [InlineData("wrong size")]
    [InlineData("wrong type")]
    [InlineData("not a generator state")]
    public void A_generator_state_libtorch_would_refuse_is_named_and_nothing_is_restored(string damage)
    {
        string path = TrainedCheckpoint();
        using var good = torch.random.get_rng_state();
        Rewrite(path, tensors => tensors[Checkpoint.TorchRngName] = damage switch
        {
            "wrong size" => torch.zeros(100, ScalarType.Byte),
            "wrong type" => good.to(ScalarType.Float32),
            _ => torch.zeros_like(good), // seeded 0, left 0: libtorch's "Invalid mt19937 state"
        });
        using var model = TinyConvNet.Create(2);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, Quick, _data.Test);
        var before = TinyConvNet.Snapshot(model);
        torch.random.manual_seed(77);
        using var generator = torch.random.get_rng_state();

        var error = Assert.Throws<CheckpointMismatchException>(() => trainer.Resume(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("the torch generator state ('rng/torch')", error.Message);
        Assert.Equal(before, TinyConvNet.Snapshot(model));
        Assert.All(Momentum(trainer), Assert.Null);
        Assert.Equal(default, trainer.Position);
        using var after = torch.random.get_rng_state();
        Assert.Equal(generator.bytes.ToArray(), after.bytes.ToArray());
    }

    [Fact]
    public void A_missing_momentum_buffer_is_refused_rather_than_reset()
    {
        string path = TrainedCheckpoint();
        Rewrite(path, tensors => tensors.Remove(Checkpoint.MomentumPrefix + "conv2.weight"));
        using var model = TinyConvNet.Create(2);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, Quick, _data.Test);
        var before = TinyConvNet.Snapshot(model);

        var error = Assert.Throws<CheckpointMismatchException>(() => trainer.Resume(path));

        Assert.Equal(["the momentum buffer of 'conv2.weight' is missing (the checkpoint was trained with momentum 0.9)"], error.Mismatches);
        Assert.Equal(before, TinyConvNet.Snapshot(model));
    }

    [Fact]
    public void A_checkpoint_written_before_the_first_step_has_a_momentum_buffer_for_every_parameter_and_resumes()
    {
        string path = _directory.File("start.ckpt");
        using (var model = TinyConvNet.Create(1))
        using (var trainer = new Trainer(model, "TinyConvNet", _data.Train, Quick, _data.Test))
            trainer.SaveCheckpoint(path);

        var momentum = Checkpoint.Read(path).Tensors.Where(t => t.Key.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal)).ToList();
        using var resumedModel = TinyConvNet.Create(2);
        using var resumed = new Trainer(resumedModel, "TinyConvNet", _data.Train, Quick, _data.Test);
        resumed.Resume(path);

        Assert.Equal(8, momentum.Count);
        Assert.All(momentum, t => Assert.Equal(0, t.Value.abs().sum().item<float>()));
    }

    [Theory]
    [InlineData("padTo")]
    [InlineData("normalization")]
    [InlineData("position")]
    public void Editing_the_training_state_breaks_the_hash(string field)
    {
        string path = TrainedCheckpoint();
        string json = SafeTensors.LoadMetadata(path)[Checkpoint.TrainingKey];
        string edited = field switch
        {
            "padTo" => json.Replace("\"padTo\":null", "\"padTo\":32", StringComparison.Ordinal),
            "normalization" => json.Replace("\"mean\":[0.", "\"mean\":[1.", StringComparison.Ordinal),
            _ => json.Replace("\"epoch\":1", "\"epoch\":0", StringComparison.Ordinal),
        };
        Assert.NotEqual(json, edited);
        var metadata = new Dictionary<string, string>(SafeTensors.LoadMetadata(path)) { [Checkpoint.TrainingKey] = edited };
        SafeTensors.Save(SafeTensors.Load(path), path, metadata);

        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.ReadInfo(path));

        Assert.Equal($"Checkpoint '{path}' is corrupt: the SHA-256 of its architecture, training state and tensors does not match the one it was written with.", error.Message);
        using var model = TinyConvNet.Create(2);
        Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(path, model, "TinyConvNet"));
    }

    [Theory]
    [InlineData("{}", "missing required properties including: 'position'")]
    [InlineData("null", "training state ('cedsl.training') null")]
    [InlineData("without normalization", "missing required properties including: 'normalization'")]
    [InlineData("parameterGroups null", "parameterGroups")]
    [InlineData("batchSize 0", "invalid training state ('cedsl.training'): epochs 2, batchSize 0 and evaluationBatchSize 500 must be positive")]
    public void Training_state_with_a_valid_hash_but_missing_or_impossible_fields_is_a_clear_error(string damage, string expected)
    {
        string path = TrainedCheckpoint();
        var metadata = SafeTensors.LoadMetadata(path);
        string json = metadata[Checkpoint.TrainingKey];
        string edited = damage switch
        {
            "without normalization" => System.Text.RegularExpressions.Regex.Replace(json, "\"normalization\":\\{[^}]*\\},", ""),
            "parameterGroups null" => System.Text.RegularExpressions.Regex.Replace(json, "\"parameterGroups\":\\[.*?\\]\\}\\]", "\"parameterGroups\":null"),
            "batchSize 0" => json.Replace("\"batchSize\":50", "\"batchSize\":0", StringComparison.Ordinal),
            _ => damage,
        };
        Assert.NotEqual(json, edited);
        var tensors = SafeTensors.Load(path);
        string architecture = metadata[Checkpoint.ArchitectureKey];
        SafeTensors.Save(tensors, path, new Dictionary<string, string>(metadata)
        {
            [Checkpoint.TrainingKey] = edited,
            [Checkpoint.ContentHashKey] = Checkpoint.ContentHash(architecture, edited, tensors),
        });
        using var model = TinyConvNet.Create(2);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, Quick, _data.Test);

        var read = Assert.Throws<InvalidDataException>(() => Checkpoint.ReadInfo(path));
        var resume = Assert.Throws<InvalidDataException>(() => trainer.Resume(path));

        Assert.StartsWith($"Checkpoint '{path}' has ", read.Message);
        Assert.Contains(expected, read.Message);
        Assert.Equal(read.Message, resume.Message);
    }

    [Fact]
    public void Resume_refuses_other_images_augmentation_test_images_and_run_settings()
    {
        string path = TrainedCheckpoint(Quick with { RunSettings = new Dictionary<string, string> { ["--select-gamma"] = "0.001" } });
        // The same number of training images, other ones: the last 1,000 of the test file's 500, twice, stand in.
        using var otherImages = new ImageDataset("Fashion-MNIST", DatasetSplit.Train, "elsewhere", false,
            _data.Train.PixelsOf([.. Enumerable.Range(0, 1000).Reverse()]), 1000, 1, 28, 28, _data.Train.LabelsOf([.. Enumerable.Range(0, 1000).Reverse()]),
            FashionMnist.ClassNames);
        using var fewerTest = new ImageDataset("Fashion-MNIST", DatasetSplit.Test, "embedded subset", true,
            _data.Test.PixelsOf([.. Enumerable.Range(0, 100)]), 100, 1, 28, 28, _data.Test.LabelsOf([.. Enumerable.Range(0, 100)]), FashionMnist.ClassNames);
        using var model = TinyConvNet.Create(2);
        var options = Quick with { Augmentation = null, RunSettings = new Dictionary<string, string> { ["--select-gamma"] = "0.01" } };
        using var trainer = new Trainer(model, "TinyConvNet", otherImages, options, fewerTest);
        var before = TinyConvNet.Snapshot(model);

        var error = Assert.Throws<CheckpointMismatchException>(() => trainer.Resume(path));

        Assert.Equal(4, error.Mismatches.Count);
        Assert.StartsWith("training images: the checkpoint was trained on Fashion-MNIST train, embedded subset, 1,000 images (SHA-256 ", error.Mismatches[0]);
        Assert.Contains("the trainer has Fashion-MNIST train, elsewhere, 1,000 images (SHA-256 ", error.Mismatches[0]);
        Assert.StartsWith("test images: the checkpoint was evaluated on Fashion-MNIST test, embedded subset, 500 images", error.Mismatches[1]);
        Assert.Equal("augmentation: the checkpoint's is crop padding 2 and horizontal flip, the trainer's none", error.Mismatches[2]);
        Assert.Equal("--select-gamma: the checkpoint's is 0.001, the trainer's 0.01", error.Mismatches[3]);
        Assert.Equal(before, TinyConvNet.Snapshot(model));
    }

    [Fact]
    public void The_same_images_read_from_elsewhere_resume()
    {
        string path = TrainedCheckpoint();
        using var copy = new ImageDataset("Fashion-MNIST", DatasetSplit.Train, "/some/other/directory", false,
            _data.Train.PixelsOf([.. Enumerable.Range(0, 1000)]), 1000, 1, 28, 28, _data.Train.LabelsOf([.. Enumerable.Range(0, 1000)]), FashionMnist.ClassNames);
        using var model = TinyConvNet.Create(2);
        using var trainer = new Trainer(model, "TinyConvNet", copy, Quick, _data.Test);

        var info = trainer.Resume(path);

        Assert.Equal(_data.Train.ContentHash(), copy.ContentHash());
        Assert.Equal(new TrainingPosition(1, 0, 20), info.Training!.Position);
    }

    /// <summary>One epoch of TinyConvNet on the embedded subset (20 steps), saved.</summary>
    private string TrainedCheckpoint(TrainingOptions? options = null)
    {
        string path = _directory.File($"run-{Guid.NewGuid():N}.ckpt");
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, options ?? Quick, _data.Test);
        trainer.TrainEpoch();
        trainer.SaveCheckpoint(path);
        return path;
    }

    /// <summary>Rewrites a checkpoint with changed tensors and a hash that matches them: a file only a buggy writer would make.</summary>
    private static void Rewrite(string path, Action<Dictionary<string, Tensor>> change)
    {
        var content = Checkpoint.Read(path);
        var tensors = new Dictionary<string, Tensor>(content.Tensors);
        change(tensors);
        Checkpoint.Write(path, content.Architecture, [.. tensors.Select(t => (t.Key, t.Value))], content.Training);
    }

    private static List<Tensor?> Momentum(Trainer trainer) =>
        [.. trainer.Optimizer.state_dict().State.Select(s => ((SGD.State)s).momentum_buffer)];
}
