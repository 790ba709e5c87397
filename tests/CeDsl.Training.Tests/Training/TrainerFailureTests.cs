using CeDsl.Data;
using CeDsl.Layers;
using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Training;

/// <summary>
/// What the trainer does when its outputs cannot be written or the run diverges: it finds unwritable
/// outputs before the first step, writes the checkpoint before the metrics row, and never writes a
/// non-finite state.
/// </summary>
[Collection(SerialTrainingCollection.Name)]
public sealed class TrainerFailureTests : IDisposable
{
    private static readonly TrainingOptions Quick = new() { Epochs = 3, BatchSize = 50, LearningRate = 0.1, Seed = 5 };

    private readonly TemporaryDirectory _directory = new();
    private readonly ImageDatasetPair _data = FashionMnist.LoadEmbeddedSubset();

    public void Dispose()
    {
        _data.Dispose();
        _directory.Dispose();
    }

    /// <summary>The options of docs/guide.md's training code, in a fresh folder: the trainer creates runs/guide.</summary>
    [Fact]
    public void The_guides_training_code_creates_its_run_folder()
    {
        string run = Path.Combine(_directory.Path, "runs", "guide");
        var options = new TrainingOptions
        {
            Epochs = 1, BatchSize = 64, LearningRate = 0.1, WeightDecay = 1e-4, LabelSmoothing = 0.1,
            PadTo = 32, Seed = 1, CheckpointPath = Path.Combine(run, "checkpoint.safetensors"), MetricsCsvPath = Path.Combine(run, "metrics.csv"),
        };
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, options, _data.Test);

        var epochs = trainer.Run();

        Assert.Single(epochs);
        Assert.Equal(new TrainingPosition(1, 0, 15), Checkpoint.ReadInfo(options.CheckpointPath).Training!.Position);
        Assert.Single(MetricsCsv.Read(options.MetricsCsvPath));
        Assert.Equal(["checkpoint.safetensors", "metrics.csv"], Directory.GetFileSystemEntries(run).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void A_checkpoint_folder_that_cannot_be_made_is_found_before_the_first_step()
    {
        File.WriteAllText(_directory.File("runs"), "a file where the run folder should be");
        var options = Quick with { CheckpointPath = Path.Combine(_directory.Path, "runs", "checkpoint.safetensors") };
        int steps = 0;
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, options) { StepProgress = new ActionProgress<TrainingStep>(_ => steps++) };

        var error = Assert.Throws<IOException>(() => trainer.TrainEpoch());

        Assert.StartsWith($"Cannot write '{options.CheckpointPath}'", error.Message);
        Assert.Equal(0, steps);
    }

    [Fact]
    public void A_damaged_metrics_file_is_found_before_the_first_step()
    {
        string metrics = _directory.File("metrics.csv");
        File.WriteAllText(metrics, MetricsCsv.Header + "\n1,20,0.1,oops\n");
        int steps = 0;
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, Quick with { MetricsCsvPath = metrics })
        {
            StepProgress = new ActionProgress<TrainingStep>(_ => steps++),
        };

        var error = Assert.Throws<InvalidDataException>(() => trainer.TrainEpoch());

        Assert.StartsWith($"Metrics file '{metrics}', line 2:", error.Message);
        Assert.Equal(0, steps);
    }

    [Fact]
    public void When_the_checkpoint_cannot_be_written_the_metrics_file_does_not_list_the_epoch()
    {
        var options = Quick with { CheckpointPath = _directory.File("run.ckpt"), MetricsCsvPath = _directory.File("metrics.csv") };
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, options, _data.Test);
        trainer.TrainEpoch();
        byte[] epochOne = File.ReadAllBytes(options.CheckpointPath);
        // A directory with content takes the checkpoint's name: the atomic rename fails, like a full disk would.
        File.Delete(options.CheckpointPath);
        Directory.CreateDirectory(options.CheckpointPath);
        File.WriteAllBytes(Path.Combine(options.CheckpointPath, "keep"), epochOne);

        Assert.Throws<IOException>(() => trainer.TrainEpoch());

        Assert.Equal([1], MetricsCsv.Read(options.MetricsCsvPath).Select(m => m.Epoch));
    }

    [Fact]
    public void A_non_finite_loss_stops_training_naming_the_epoch_and_step_and_keeps_the_last_checkpoint()
    {
        var options = Quick with { CheckpointPath = _directory.File("run.ckpt"), MetricsCsvPath = _directory.File("metrics.csv") };
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, options, _data.Test);
        trainer.TrainEpoch();
        byte[] epochOne = File.ReadAllBytes(options.CheckpointPath);
        using (torch.no_grad())
            model.state_dict()["fc.weight"].fill_(float.NaN);

        var error = Assert.Throws<TrainingDivergedException>(() => trainer.TrainEpoch());

        Assert.StartsWith("TinyConvNet diverged: the training loss is NaN at epoch 2, batch 1 (step 21, learning rate ", error.Message);
        Assert.EndsWith("): 'fc.weight' holds non-finite values; the step was not applied.", error.Message);
        Assert.Equal(new TrainingPosition(1, 0, 20), error.Position);
        Assert.Equal(epochOne, File.ReadAllBytes(options.CheckpointPath));
        Assert.Single(MetricsCsv.Read(options.MetricsCsvPath));
    }

    /// <summary>
    /// Batch normalization trains on batch statistics, so infinite running statistics leave the
    /// training loss finite; they were evaluated (test loss NaN) and saved. Now the epoch stops first.
    /// </summary>
    [Fact]
    public void Non_finite_running_statistics_stop_the_epoch_before_evaluation_and_checkpoint()
    {
        var options = Quick with { CheckpointPath = _directory.File("run.ckpt"), MetricsCsvPath = _directory.File("metrics.csv") };
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, options, _data.Test);
        trainer.TrainEpoch();
        byte[] epochOne = File.ReadAllBytes(options.CheckpointPath);
        trainer.StepProgress = new ActionProgress<TrainingStep>(step =>
        {
            if (step.Batch == step.BatchesPerEpoch)
            {
                using (torch.no_grad())
                    model.state_dict()["bn2.running_var"].fill_(float.PositiveInfinity);
            }
        });

        var error = Assert.Throws<TrainingDivergedException>(() => trainer.TrainEpoch());

        Assert.Equal("TinyConvNet diverged: 'bn2.running_var' holds non-finite values after the last step of epoch 2 (step 40).", error.Message);
        Assert.Equal(epochOne, File.ReadAllBytes(options.CheckpointPath));
        Assert.Single(MetricsCsv.Read(options.MetricsCsvPath));
        Assert.Contains("was not written", Assert.Throws<TrainingDivergedException>(() => trainer.SaveCheckpoint(options.CheckpointPath)).Message);
    }

    /// <summary>CE refuses a non-finite input before the loss is computed; the divergence is named, not the input.</summary>
    [Theory]
    [InlineData(float.NaN, "'conv1.weight' holds non-finite values at epoch 1, batch 4 (step 4), after the step before (learning rate ")]
    [InlineData(1e38f, "holds non-finite values at epoch 1, batch 4 (step 4), after the step before (learning rate ")]
    public void A_network_with_channel_equilibrium_reports_the_divergence_not_its_input(float weight, string expected)
    {
        torch.random.manual_seed(1);
        using var model = nn.Sequential(
            ("conv1", nn.Conv2d(1, 16, 3, padding: 1, bias: false)), ("bn1", nn.BatchNorm2d(16)), ("ce1", new ChannelEquilibrium(16, groupSize: 8)),
            ("relu1", nn.ReLU()), ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(16, 10)));
        using var trainer = new Trainer(model, "ce-net", _data.Train, Quick with { Epochs = 1 });
        trainer.StepProgress = new ActionProgress<TrainingStep>(step =>
        {
            if (step.GlobalStep == 3)
            {
                using (torch.no_grad())
                    model.state_dict()["conv1.weight"].fill_(weight);
            }
        });

        var error = Assert.Throws<TrainingDivergedException>(() => trainer.TrainEpoch());

        Assert.StartsWith("ce-net diverged: '", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.IsType<ArgumentException>(error.InnerException);
    }

    /// <summary>
    /// Finite parameters that overflow in evaluation mode only (a huge BN scale): the test loss is not
    /// finite, and the first module whose output is not finite is named.
    /// </summary>
    [Fact]
    public void A_non_finite_evaluation_names_the_first_module_whose_output_overflows()
    {
        var options = Quick with { CheckpointPath = _directory.File("run.ckpt"), MetricsCsvPath = _directory.File("metrics.csv") };
        using var model = TinyConvNet.Create(1);
        using var trainer = new Trainer(model, "TinyConvNet", _data.Train, options, _data.Test);
        trainer.StepProgress = new ActionProgress<TrainingStep>(step =>
        {
            if (step.Batch == step.BatchesPerEpoch)
            {
                using (torch.no_grad())
                    model.state_dict()["bn2.weight"].fill_(1e38f);
            }
        });

        var error = Assert.Throws<TrainingDivergedException>(() => trainer.TrainEpoch());

        Assert.Equal("TinyConvNet diverged: the output of 'bn2' holds non-finite values (the images are finite) in the evaluation after epoch 1 (step 20).", error.Message);
        Assert.False(File.Exists(options.CheckpointPath));
        Assert.False(File.Exists(options.MetricsCsvPath));
    }
}
