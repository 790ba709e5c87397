using CeDsl.Data;
using CeDsl.Training;
using TorchSharp;
using TorchSharp.Modules;

namespace CeDsl.Training.Tests.Training;

/// <summary>
/// Resuming from a checkpoint continues bit-exactly: float32, same seed, one torch thread (so CPU
/// reductions run in one fixed order), run alone because torch's global generator is process-wide.
/// </summary>
[Collection(SerialTrainingCollection.Name)]
public sealed class ExactResumeTests : IDisposable
{
    private readonly int _threads = torch.get_num_threads();
    private readonly TemporaryDirectory _directory = new();
    private readonly ImageDatasetPair _data = FashionMnist.LoadEmbeddedSubset();

    public ExactResumeTests() => torch.set_num_threads(1);

    public void Dispose()
    {
        torch.set_num_threads(_threads);
        _directory.Dispose();
        _data.Dispose();
    }

    private static readonly TrainingOptions Options = new()
    {
        Epochs = 2,
        BatchSize = 50,
        Seed = 42,
        LearningRate = 0.05,
        Nesterov = true,
        ParameterGroups = [ParameterGroupRule.NoDecayOnOneDimensional()],
        Schedule = LearningRateSchedule.Step([1], 0.5).WithLinearWarmup(0.5),
    };

    [Fact]
    public void Two_epochs_straight_equal_one_epoch_then_save_resume_and_one_more_bit_for_bit()
    {
        using var straightModel = TinyConvNet.Create(7);
        using var straight = new Trainer(straightModel, "TinyConvNet", _data.Train, Options, _data.Test);
        var straightMetrics = straight.Run();

        string path = _directory.File("epoch1.ckpt");
        using (var firstModel = TinyConvNet.Create(7))
        using (var first = new Trainer(firstModel, "TinyConvNet", _data.Train, Options with { CheckpointPath = path }, _data.Test))
            first.TrainEpoch();
        using var resumedModel = TinyConvNet.Create(8);
        using var resumed = new Trainer(resumedModel, "TinyConvNet", _data.Train, Options, _data.Test);
        ScrambleTorchGenerator();
        var info = resumed.Resume(path);
        var afterResume = TinyConvNet.Snapshot(resumedModel);
        var resumedMetrics = resumed.Run();

        Assert.Equal(new TrainingPosition(1, 0, 20), info.Training!.Position);
        Assert.NotEqual(afterResume, TinyConvNet.Snapshot(resumedModel));
        AssertSameState(straight, straightModel, resumed, resumedModel);
        Assert.Equal(straightMetrics[1] with { ImagesPerSecond = 0, Seconds = 0 }, resumedMetrics.Single() with { ImagesPerSecond = 0, Seconds = 0 });
    }

    [Fact]
    public void Resuming_in_the_middle_of_an_epoch_is_bit_exact_too()
    {
        using var straightModel = TinyConvNet.Create(7);
        using var straight = new Trainer(straightModel, "TinyConvNet", _data.Train, Options);
        var straightMetrics = straight.Run();

        string path = _directory.File("step27.ckpt");
        using (var firstModel = TinyConvNet.Create(7))
        using (var first = new Trainer(firstModel, "TinyConvNet", _data.Train, Options))
        using (var interrupt = new CancellationTokenSource())
        {
            first.StepProgress = new ActionProgress<TrainingStep>(step =>
            {
                if (step.GlobalStep == 27)
                    interrupt.Cancel();
            });
            Assert.Throws<OperationCanceledException>(() => first.Run(interrupt.Token));
            Assert.Equal(new TrainingPosition(1, 7, 27), first.Position);
            first.SaveCheckpoint(path);
        }
        using var resumedModel = TinyConvNet.Create(8);
        using var resumed = new Trainer(resumedModel, "TinyConvNet", _data.Train, Options);
        ScrambleTorchGenerator();
        resumed.Resume(path);
        var resumedMetrics = resumed.Run();

        AssertSameState(straight, straightModel, resumed, resumedModel);
        // The epoch's running sums were saved too, so its metrics are the uninterrupted ones.
        Assert.Equal(straightMetrics[1].TrainLoss, resumedMetrics.Single().TrainLoss);
        Assert.Equal(straightMetrics[1].TrainAccuracy, resumedMetrics.Single().TrainAccuracy);
    }

    /// <summary>
    /// Cancelled after the epoch's last step (the evaluation sees the cancellation first): the saved
    /// position is "every step of epoch 1 done, its evaluation not", and a resumed trainer evaluates,
    /// writes the epoch's metrics and goes on exactly as the uninterrupted run.
    /// </summary>
    [Fact]
    public void Interrupted_after_the_last_step_of_an_epoch_or_during_its_evaluation_resumes_bit_exactly()
    {
        using var straightModel = TinyConvNet.Create(7);
        using var straight = new Trainer(straightModel, "TinyConvNet", _data.Train, Options, _data.Test);
        var straightMetrics = straight.Run();

        string path = _directory.File("evaluation-pending.ckpt");
        using (var firstModel = TinyConvNet.Create(7))
        using (var first = new Trainer(firstModel, "TinyConvNet", _data.Train, Options, _data.Test))
        using (var interrupt = new CancellationTokenSource())
        {
            first.StepProgress = new ActionProgress<TrainingStep>(step =>
            {
                if (step.Batch == step.BatchesPerEpoch)
                    interrupt.Cancel();
            });
            Assert.Throws<OperationCanceledException>(() => first.Run(interrupt.Token));
            Assert.Equal(new TrainingPosition(0, 20, 20), first.Position);
            first.SaveCheckpoint(path);
        }
        using var resumedModel = TinyConvNet.Create(8);
        using var resumed = new Trainer(resumedModel, "TinyConvNet", _data.Train, Options with { MetricsCsvPath = _directory.File("metrics.csv") }, _data.Test);
        ScrambleTorchGenerator();
        resumed.Resume(path);
        var resumedMetrics = resumed.Run();

        AssertSameState(straight, straightModel, resumed, resumedModel);
        Assert.Equal(straightMetrics.Select(WithoutTiming), resumedMetrics.Select(WithoutTiming));
        Assert.Equal([1, 2], MetricsCsv.Read(_directory.File("metrics.csv")).Select(m => m.Epoch));
    }

    private static EpochMetrics WithoutTiming(EpochMetrics m) => m with { ImagesPerSecond = 0, Seconds = 0 };

    /// <summary>Moves torch's global generator elsewhere, so only a restored state can reproduce dropout.</summary>
    private static void ScrambleTorchGenerator()
    {
        torch.random.manual_seed(12345);
        torch.rand(1000).Dispose();
    }

    private static void AssertSameState(Trainer expected, TinyConvNet expectedModel, Trainer actual, TinyConvNet actualModel)
    {
        Assert.Equal(TinyConvNet.Snapshot(expectedModel), TinyConvNet.Snapshot(actualModel));
        Assert.Equal(Momentum(expected), Momentum(actual));
        Assert.Equal(expected.Position, actual.Position);

        static List<byte[]> Momentum(Trainer trainer) =>
            [.. trainer.Optimizer.state_dict().State.Select(s => ((SGD.State)s).momentum_buffer!.bytes.ToArray())];
    }
}
