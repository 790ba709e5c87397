using CeDsl.Data;

namespace CeDsl.Training;

/// <summary>The recipe of a training run. Defaults: SGD 0.1, momentum 0.9, weight decay 1e-4, label smoothing 0.1.</summary>
public sealed record TrainingOptions
{
    /// <summary>Epochs to train.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Training images per step.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Images per evaluation batch.</summary>
    public int EvaluationBatchSize { get; init; } = 500;

    /// <summary>
    /// The seed of the shuffle, the augmentation and torch's global generator (dropout and any other
    /// torch randomness during training). Seed the model's initialisation yourself before building it.
    /// </summary>
    public ulong Seed { get; init; }

    /// <summary>Base learning rate of every parameter group.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>SGD momentum (PyTorch semantics, no dampening).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Nesterov momentum.</summary>
    public bool Nesterov { get; init; }

    /// <summary>L2 weight decay of parameters no rule matches.</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>Rules giving some parameters their own weight decay (first match wins).</summary>
    public IReadOnlyList<ParameterGroupRule> ParameterGroups { get; init; } = [];

    /// <summary>The learning-rate schedule; null is a cosine over <see cref="Epochs"/>.</summary>
    public LearningRateSchedule? Schedule { get; init; }

    /// <summary>Label smoothing of the training loss (the reference recipe uses 0.1); evaluation loss is plain cross-entropy.</summary>
    public double LabelSmoothing { get; init; } = 0.1;

    /// <summary>Training augmentation, or null for none.</summary>
    public Augmentation? Augmentation { get; init; } = Augmentation.Standard;

    /// <summary>Zero-pad images to this size (e.g. 32 for CIFAR-style networks).</summary>
    public int? PadTo { get; init; }

    /// <summary>Normalisation; null uses the training set's own mean and standard deviation.</summary>
    public Normalization? Normalization { get; init; }

    /// <summary>Where to append per-epoch metrics, or null.</summary>
    public string? MetricsCsvPath { get; init; }

    /// <summary>Where to write a checkpoint after epochs, or null.</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>Write the checkpoint every this many epochs (and after the last one).</summary>
    public int CheckpointEveryEpochs { get; init; } = 1;

    /// <summary>Evaluate on the test set after every epoch (when the trainer has one).</summary>
    public bool EvaluateEveryEpoch { get; init; } = true;

    /// <summary>
    /// The caller's own settings that shape the run and that the trainer cannot see (e.g. a command
    /// line's options that configure the model), by name. They are recorded in checkpoints, and
    /// <see cref="Trainer.Resume"/> refuses a checkpoint whose settings differ.
    /// </summary>
    public IReadOnlyDictionary<string, string> RunSettings { get; init; } = new Dictionary<string, string>();

    /// <summary>Work done at the end of every epoch, after the evaluation, before the checkpoint.</summary>
    public IReadOnlyList<IEpochHook> EpochHooks { get; init; } = [];

    /// <summary>The schedule in force: <see cref="Schedule"/> or a cosine over <see cref="Epochs"/>.</summary>
    public LearningRateSchedule EffectiveSchedule => Schedule ?? LearningRateSchedule.Cosine(Epochs);

    internal void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok)
                throw new ArgumentException($"Training options: {message}.");
        }
        Check(Epochs > 0, $"epochs must be positive, got {Epochs}");
        Check(BatchSize > 0, $"batch size must be positive, got {BatchSize}");
        Check(EvaluationBatchSize > 0, $"evaluation batch size must be positive, got {EvaluationBatchSize}");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate must be positive, got {LearningRate}");
        Check(Momentum is >= 0 and < 1, $"momentum must be in [0, 1), got {Momentum}");
        Check(!Nesterov || Momentum > 0, "Nesterov momentum needs momentum > 0");
        Check(WeightDecay >= 0 && ParameterGroups.All(r => r.WeightDecay >= 0), "weight decays must not be negative");
        Check(ParameterGroups.Select(r => r.Name).Append("default").Distinct().Count() == ParameterGroups.Count + 1, "parameter group names must be distinct and not 'default'");
        Check(LabelSmoothing is >= 0 and < 1, $"label smoothing must be in [0, 1), got {LabelSmoothing}");
        Check(CheckpointEveryEpochs > 0, $"checkpoint interval must be positive, got {CheckpointEveryEpochs}");
        Check(CheckpointPath is null || CheckpointPath.Trim().Length > 0, "the checkpoint path is empty");
        Check(MetricsCsvPath is null || MetricsCsvPath.Trim().Length > 0, "the metrics path is empty");
    }
}
