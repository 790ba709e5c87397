using CeDsl.Data;
using CeDsl.IO;
using CeDsl.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Training;

public class TrainerTests
{
    private static TrainingOptions Quick => new() { Epochs = 2, BatchSize = 50, LearningRate = 0.1, Seed = 5 };

    [Fact]
    public void Training_reports_every_step_and_epoch_writes_csv_and_checkpoints_and_learns()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var directory = new TemporaryDirectory();
        using var model = TinyConvNet.Create(1);
        var options = Quick with { Epochs = 3, MetricsCsvPath = directory.File("metrics.csv"), CheckpointPath = directory.File("run.ckpt") };
        using var trainer = new Trainer(model, "TinyConvNet", data.Train, options, data.Test);
        var steps = new List<TrainingStep>();
        var epochs = new List<EpochMetrics>();
        trainer.StepProgress = new ActionProgress<TrainingStep>(steps.Add);
        trainer.EpochCompleted = new ActionProgress<EpochMetrics>(epochs.Add);

        var result = trainer.Run();

        Assert.Equal(20, trainer.BatchesPerEpoch);
        Assert.Equal(60, steps.Count);
        Assert.Equal(Enumerable.Range(1, 60).Select(i => (long)i), steps.Select(s => s.GlobalStep));
        Assert.All(steps, s => Assert.Equal(trainer.LearningRateAt(s.GlobalStep - 1), s.LearningRate));
        Assert.Equal(0.1, steps[0].LearningRate);
        Assert.Equal(0.1 * (1 + Math.Cos(Math.PI * 59 / 60.0)) / 2, steps[^1].LearningRate, 12);
        Assert.All(steps, s => Assert.True(s.ImagesPerSecond > 0 && s.Accuracy is >= 0 and <= 1 && s.Loss > 0));
        Assert.Equal(result, epochs);
        Assert.Equal([1, 2, 3], epochs.Select(e => e.Epoch));
        Assert.Equal(steps[19].EpochLoss, epochs[0].TrainLoss, 12);
        Assert.Equal(steps[19].EpochAccuracy, epochs[0].TrainAccuracy, 12);
        Assert.True(epochs[2].TrainLoss < epochs[0].TrainLoss, $"train loss {epochs[0].TrainLoss} -> {epochs[2].TrainLoss}");
        Assert.True(epochs[2].TestAccuracy > 0.2, $"test accuracy {epochs[2].TestAccuracy} after 60 steps (chance is 0.1)");
        Assert.True(trainer.IsFinished);

        Assert.Equal(4, File.ReadAllLines(options.MetricsCsvPath).Length);
        Assert.Equal(epochs.Select(e => e.TestAccuracy), MetricsCsv.Read(options.MetricsCsvPath).Select(m => m.TestAccuracy).Select(a => a));
        var info = Checkpoint.ReadInfo(options.CheckpointPath);
        Assert.Equal("TinyConvNet", info.Architecture);
        Assert.Equal(new TrainingPosition(3, 0, 60), info.Training!.Position);
        Assert.Equal(trainer.Normalization.Mean, info.Training.Normalization.Mean);
        Assert.Equal("cosine(3)", info.Training.Schedule);
        Assert.Contains(info.ModelTensors, t => t.Name == "bn1.running_mean" && t.Shape.SequenceEqual(new long[] { 8 }));
        Assert.Equal(Directory.GetFiles(directory.Path).Order(), new[] { options.CheckpointPath, options.MetricsCsvPath }.Order());
    }

    [Fact]
    public void Parameter_groups_give_their_parameters_their_own_weight_decay()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var model = TinyConvNet.Create(2);
        var options = Quick with { LearningRate = 0.5, WeightDecay = 0.01, ParameterGroups = [ParameterGroupRule.NoDecayOnOneDimensional()] };
        using var trainer = new Trainer(model, "TinyConvNet", data.Train, options);

        Assert.Equal(["default", "no_decay_1d"], trainer.ParameterGroups.Select(g => g.Name));
        Assert.Equal(["conv1.weight", "conv2.weight", "fc.weight"], trainer.ParameterGroups[0].ParameterNames);
        Assert.Equal(["bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias", "fc.bias"], trainer.ParameterGroups[1].ParameterNames);

        // With a zero gradient, a first SGD step is pure decay: p <- p - lr * wd * p.
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        using (var scope = torch.NewDisposeScope())
        {
            (model.call(torch.zeros(2, 1, 28, 28)).sum() * 0).backward();
            trainer.Optimizer.step();
        }
        foreach (var (name, parameter) in model.named_parameters())
        {
            double decay = trainer.ParameterGroups[0].ParameterNames.Contains(name) ? 0.01 : 0.0;
            float[] after = parameter.data<float>().ToArray();
            for (int i = 0; i < after.Length; i++)
                Assert.Equal(before[name][i] * (1 - 0.5 * decay), after[i], 1e-6);
        }

        var shifts = ParameterGroupRule.NameEndsWith("_bias", 1e-5);
        using var anyParameter = new Parameter(torch.zeros(2));
        Assert.True(shifts.Matches("layer1.0.conv2._bias", anyParameter));
        Assert.False(shifts.Matches("layer1.0.bn1.bias", anyParameter));
    }

    [Fact]
    public void Evaluation_is_batch_size_independent_uses_eval_mode_and_restores_the_mode()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var model = TinyConvNet.Create(3);
        var normalization = Normalization.Of(data.Train);
        var runningMean = model.state_dict()["bn1.running_mean"].data<float>().ToArray();

        var small = Evaluator.Evaluate(model, data.Test, normalization, batchSize: 7);
        var whole = Evaluator.Evaluate(model, data.Test, normalization, batchSize: 500);

        Assert.True(model.training);
        Assert.Equal(runningMean, model.state_dict()["bn1.running_mean"].data<float>().ToArray());
        Assert.Equal(500, small.Images);
        Assert.Equal(whole.Accuracy, small.Accuracy);
        Assert.Equal(whole.Loss, small.Loss, 4);

        using var scope = torch.NewDisposeScope();
        using var loader = new BatchLoader(data.Test, new BatchOptions { BatchSize = 500, Normalization = normalization });
        model.eval();
        var batch = loader.GetBatch(0, 0);
        Tensor logits;
        using (torch.no_grad())
            logits = model.call(batch.Images);
        model.train();
        double expectedLoss = nn.functional.cross_entropy(logits, batch.Labels).item<float>();
        double expectedAccuracy = logits.argmax(1).eq(batch.Labels).to(ScalarType.Float64).mean().item<double>();
        Assert.Equal(expectedLoss, whole.Loss, 5);
        Assert.Equal(expectedAccuracy, whole.Accuracy, 12);
    }

    [Fact]
    public void A_checkpoint_of_another_architecture_is_a_clear_error_that_changes_nothing()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var directory = new TemporaryDirectory();
        string path = directory.File("narrow.ckpt");
        using (var narrow = TinyConvNet.Create(1, width: 8))
        using (var trainer = new Trainer(narrow, "TinyConvNet-8", data.Train, Quick))
        {
            trainer.TrainEpoch();
            trainer.SaveCheckpoint(path);
        }
        byte[] checkpointBytes = File.ReadAllBytes(path);

        using var wide = TinyConvNet.Create(2, width: 16);
        using var wideTrainer = new Trainer(wide, "TinyConvNet-16", data.Train, Quick);
        var before = TinyConvNet.Snapshot(wide);

        var error = Assert.Throws<CheckpointMismatchException>(() => wideTrainer.Resume(path));
        var modelOnly = Assert.Throws<CheckpointMismatchException>(() => Checkpoint.LoadModel(path, wide, "TinyConvNet-16"));

        Assert.Contains(path, error.Message);
        Assert.Contains("architecture: the checkpoint is 'TinyConvNet-8', the model is 'TinyConvNet-16'", error.Message);
        Assert.Contains("'conv1.weight': the checkpoint has [8, 1, 3, 3] Float32, the model [16, 1, 3, 3] Float32", error.Message);
        Assert.Contains("Nothing was loaded", error.Message);
        // The trainer also reports the momentum buffers that do not fit.
        Assert.Equal(modelOnly.Mismatches, error.Mismatches.Take(modelOnly.Mismatches.Count));
        Assert.Contains("momentum buffer of 'conv1.weight': the checkpoint has [8, 1, 3, 3] Float32, the parameter is [16, 1, 3, 3] Float32", error.Mismatches);
        Assert.Equal(before, TinyConvNet.Snapshot(wide));
        Assert.Equal(default, wideTrainer.Position);
        Assert.All(wideTrainer.Optimizer.state_dict().State, s => Assert.Null(((SGD.State)s).momentum_buffer));
        Assert.Equal(checkpointBytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void Resuming_with_another_seed_batch_size_or_padding_is_a_clear_error_that_changes_nothing()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var directory = new TemporaryDirectory();
        string path = directory.File("run.ckpt");
        using (var model = TinyConvNet.Create(1))
        using (var trainer = new Trainer(model, "TinyConvNet", data.Train, Quick))
        {
            trainer.TrainEpoch();
            trainer.SaveCheckpoint(path);
        }
        using var other = TinyConvNet.Create(2);
        using var otherTrainer = new Trainer(other, "TinyConvNet", data.Train, Quick with { Seed = 6, BatchSize = 40, PadTo = 32 });
        var before = TinyConvNet.Snapshot(other);

        var error = Assert.Throws<CheckpointMismatchException>(() => otherTrainer.Resume(path));

        Assert.Equal(
        [
            "seed: the checkpoint's is 5, the trainer's 6",
            "batch size: the checkpoint's is 50, the trainer's 40",
            "padding: the checkpoint was trained with PadTo none, the trainer has 32",
        ], error.Mismatches);
        Assert.Equal(before, TinyConvNet.Snapshot(other));
        Assert.Equal(default, otherTrainer.Position);
    }

    [Fact]
    public void A_checkpoint_with_the_same_name_but_other_shapes_names_the_parameter()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var directory = new TemporaryDirectory();
        string path = directory.File("model.ckpt");
        using (var narrow = TinyConvNet.Create(1, width: 8))
            Checkpoint.SaveModel(path, narrow, "TinyConvNet");
        using var wide = TinyConvNet.Create(2, width: 4);
        var before = TinyConvNet.Snapshot(wide);

        var error = Assert.Throws<CheckpointMismatchException>(() => Checkpoint.LoadModel(path, wide, "TinyConvNet"));

        Assert.DoesNotContain("architecture", error.Message);
        Assert.Contains("'bn2.running_var': the checkpoint has [16] Float32, the model [8] Float32", error.Mismatches);
        Assert.Equal(before, TinyConvNet.Snapshot(wide));
    }

    [Fact]
    public void Model_checkpoint_round_trips_and_a_training_trainer_refuses_it()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var directory = new TemporaryDirectory();
        string path = directory.File("model.ckpt");
        using var source = TinyConvNet.Create(1);
        Checkpoint.SaveModel(path, source, "TinyConvNet");
        using var target = TinyConvNet.Create(2);

        var info = Checkpoint.LoadModel(path, target, "TinyConvNet");

        Assert.Null(info.Training);
        Assert.Equal(TinyConvNet.Snapshot(source), TinyConvNet.Snapshot(target));
        using var trainer = new Trainer(TinyConvNet.Create(3), "TinyConvNet", data.Train, Quick);
        Assert.Contains("model-only checkpoint", Assert.Throws<CheckpointMismatchException>(() => trainer.Resume(path)).Message);
    }

    [Fact]
    public void A_truncated_corrupted_or_foreign_file_is_a_clear_error_that_changes_nothing()
    {
        using var directory = new TemporaryDirectory();
        string path = directory.File("model.ckpt");
        using var source = TinyConvNet.Create(1);
        Checkpoint.SaveModel(path, source, "TinyConvNet");
        byte[] whole = File.ReadAllBytes(path);
        using var target = TinyConvNet.Create(2);
        var before = TinyConvNet.Snapshot(target);

        File.WriteAllBytes(path, whole[..^100]);
        var truncated = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(path, target, "TinyConvNet"));
        byte[] flipped = [.. whole];
        flipped[^10] ^= 0xFF; // in the last tensor's data
        File.WriteAllBytes(path, flipped);
        var corrupted = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(path, target, "TinyConvNet"));
        StateDict.Save(source, path + ".safetensors");
        var stateDict = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(path + ".safetensors", target, "TinyConvNet"));

        Assert.Contains(path, truncated.Message);
        Assert.Contains("truncated", truncated.Message);
        Assert.Contains($"Checkpoint '{path}' is corrupt", corrupted.Message);
        Assert.Contains("not a CeDsl checkpoint", stateDict.Message);
        Assert.Equal(before, TinyConvNet.Snapshot(target));
    }

    [Fact]
    public void A_checkpoint_write_that_fails_half_way_leaves_the_existing_checkpoint_byte_identical()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var directory = new TemporaryDirectory();
        string path = directory.File("run.ckpt");
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", data.Train, Quick);
        trainer.TrainEpoch();
        trainer.SaveCheckpoint(path);
        byte[] original = File.ReadAllBytes(path);
        trainer.TrainEpoch();

        var error = Assert.Throws<IOException>(() => trainer.SaveCheckpoint(path, file => new FailingStream(file, original.Length / 2)));

        Assert.Contains("left unchanged", error.Message);
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFileSystemEntries(directory.Path));
        Assert.Equal(new TrainingPosition(1, 0, 20), Checkpoint.ReadInfo(path).Training!.Position);
    }
}
