using System.Diagnostics;
using CeDsl.Data;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Training;

/// <summary>
/// Trains an image classifier with SGD (momentum, weight decay per parameter group), a learning-rate
/// schedule evaluated per step, label-smoothing cross-entropy and a seeded, augmented batch order.
/// Reports every step and epoch through <see cref="IProgress{T}"/>, appends per-epoch metrics to a
/// CSV and writes atomic checkpoints from which <see cref="Resume"/> continues bit-exactly. No
/// console output. Every step runs in its own dispose scope, so native memory does not grow.
/// </summary>
public sealed class Trainer : IDisposable
{
    private const string DefaultGroup = "default";

    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly LearningRateSchedule _schedule;
    private readonly BatchLoader _trainLoader;
    private readonly BatchLoader? _testLoader;
    private readonly SGD _optimizer;
    private EpochTotals _epoch;

    /// <summary>
    /// Prepares training of <paramref name="model"/> (already initialised) on <paramref name="trainSet"/>,
    /// evaluating on <paramref name="testSet"/> after each epoch if given. Seeds torch's global
    /// generator with <see cref="TrainingOptions.Seed"/>. The model and datasets stay the caller's.
    /// </summary>
    /// <param name="model">The classifier, [B, C, H, W] images to [B, classes] logits.</param>
    /// <param name="architecture">The architecture's name, recorded in and checked against checkpoints.</param>
    /// <param name="trainSet">The training images.</param>
    /// <param name="options">The recipe.</param>
    /// <param name="testSet">Images to evaluate on after each epoch, or null.</param>
    public Trainer(nn.Module<Tensor, Tensor> model, string architecture, ImageDataset trainSet, TrainingOptions options, ImageDataset? testSet = null)
    {
        options.Validate();
        OneDnnGuard.Protect(model);
        _model = model;
        Architecture = architecture;
        Options = options;
        _schedule = options.EffectiveSchedule;
        Normalization = options.Normalization ?? Normalization.Of(trainSet);

        var parameters = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (parameters.Count == 0)
            throw new ArgumentException($"{architecture} has no trainable parameters.", nameof(model));
        ParameterGroups = BuildGroups(parameters, options);
        var byName = parameters.ToDictionary(p => p.name, p => p.parameter);
        _optimizer = torch.optim.SGD(
            ParameterGroups.Select(g => new SGD.ParamGroup(g.ParameterNames.Select(n => byName[n]), options.LearningRate,
                options.Momentum, dampening: 0, weight_decay: g.WeightDecay, nesterov: options.Nesterov)),
            options.LearningRate, options.Momentum, dampening: 0, weight_decay: options.WeightDecay, nesterov: options.Nesterov);

        _trainLoader = new BatchLoader(trainSet, new BatchOptions
        {
            BatchSize = options.BatchSize,
            Shuffle = true,
            // A last batch of one image would break batch statistics.
            DropLast = trainSet.Count >= options.BatchSize,
            Augmentation = options.Augmentation,
            PadTo = options.PadTo,
            Normalization = Normalization,
            Seed = options.Seed,
        });
        if (testSet is not null)
            _testLoader = new BatchLoader(testSet, new BatchOptions { BatchSize = options.EvaluationBatchSize, PadTo = options.PadTo, Normalization = Normalization });
        torch.random.manual_seed(unchecked((long)options.Seed));
    }

    /// <summary>The architecture's name.</summary>
    public string Architecture { get; }

    /// <summary>The recipe.</summary>
    public TrainingOptions Options { get; }

    /// <summary>The input normalisation (the options' or the training set's own).</summary>
    public Normalization Normalization { get; }

    /// <summary>The SGD parameter groups, in optimizer order.</summary>
    public IReadOnlyList<ParameterGroupInfo> ParameterGroups { get; }

    /// <summary>The optimizer (TorchSharp's SGD, one parameter group per entry of <see cref="ParameterGroups"/>).</summary>
    public SGD Optimizer => _optimizer;

    /// <summary>Where training stands.</summary>
    public TrainingPosition Position { get; private set; }

    /// <summary>Training steps per epoch.</summary>
    public int BatchesPerEpoch => _trainLoader.BatchesPerEpoch;

    /// <summary>Whether all <see cref="TrainingOptions.Epochs"/> are done.</summary>
    public bool IsFinished => Position.Epoch >= Options.Epochs;

    /// <summary>Receives a report after every step, synchronously on the training thread.</summary>
    public IProgress<TrainingStep>? StepProgress { get; set; }

    /// <summary>Receives a report after every epoch, synchronously on the training thread.</summary>
    public IProgress<EpochMetrics>? EpochCompleted { get; set; }

    /// <summary>The base learning rate times the schedule's factor at global step <paramref name="step"/>.</summary>
    public double LearningRateAt(long step) => Options.LearningRate * _schedule.Factor(step / (double)BatchesPerEpoch);

    /// <summary>Trains the remaining epochs.</summary>
    /// <exception cref="OperationCanceledException">Cancelled between two steps; the trainer stays consistent,
    /// so <see cref="SaveCheckpoint(string)"/> can save the position in the middle of the epoch.</exception>
    public IReadOnlyList<EpochMetrics> Run(CancellationToken cancellation = default)
    {
        var epochs = new List<EpochMetrics>();
        while (!IsFinished)
            epochs.Add(TrainEpoch(cancellation));
        return epochs;
    }

    /// <summary>
    /// Trains to the end of the current epoch, evaluates, appends the metrics to the CSV and writes
    /// the checkpoint as the options say.
    /// </summary>
    public EpochMetrics TrainEpoch(CancellationToken cancellation = default)
    {
        if (IsFinished)
            throw new InvalidOperationException($"{Architecture}: training is finished ({Position.Epoch} of {Options.Epochs} epochs).");
        _model.train();
        while (Position.BatchInEpoch < BatchesPerEpoch)
        {
            cancellation.ThrowIfCancellationRequested();
            TrainStep();
        }
        return FinishEpoch(cancellation);
    }

    /// <summary>Evaluates on the test set given to the constructor.</summary>
    public EvaluationResult Evaluate(CancellationToken cancellation = default) =>
        Evaluator.Evaluate(_model, _testLoader ?? throw new InvalidOperationException($"{Architecture}: the trainer has no test set."), cancellation);

    private void TrainStep()
    {
        var position = Position;
        double learningRate = LearningRateAt(position.GlobalStep);
        long started = Stopwatch.GetTimestamp();
        int size;
        double loss;
        long correct;
        using (var scope = torch.NewDisposeScope())
        {
            var batch = _trainLoader.GetBatch(position.Epoch, position.BatchInEpoch);
            _optimizer.zero_grad();
            var logits = _model.call(batch.Images);
            var lossTensor = nn.functional.cross_entropy(logits, batch.Labels, label_smoothing: Options.LabelSmoothing);
            loss = lossTensor.item<float>();
            if (!double.IsFinite(loss))
                throw new InvalidOperationException(
                    $"{Architecture}: the training loss is {loss} at epoch {position.Epoch + 1}, batch {position.BatchInEpoch + 1} (learning rate {learningRate}); the step was not applied.");
            lossTensor.backward();
            foreach (var group in _optimizer.ParamGroups)
                group.LearningRate = learningRate;
            _optimizer.step();
            size = batch.Size;
            correct = logits.argmax(1).eq(batch.Labels).sum().item<long>();
        }
        _epoch = _epoch.Add(loss * size, correct, size, Stopwatch.GetElapsedTime(started).TotalSeconds);
        Position = position with { BatchInEpoch = position.BatchInEpoch + 1, GlobalStep = position.GlobalStep + 1 };
        StepProgress?.Report(new TrainingStep(position.Epoch + 1, Options.Epochs, position.BatchInEpoch + 1, BatchesPerEpoch,
            Position.GlobalStep, learningRate, loss, (double)correct / size,
            _epoch.LossSum / _epoch.Images, (double)_epoch.Correct / _epoch.Images, _epoch.Images / _epoch.Seconds));
    }

    private EpochMetrics FinishEpoch(CancellationToken cancellation)
    {
        int epochNumber = Position.Epoch + 1;
        var test = _testLoader is not null && Options.EvaluateEveryEpoch ? Evaluate(cancellation) : null;
        var metrics = new EpochMetrics(epochNumber, Position.GlobalStep, LearningRateAt(Position.GlobalStep - 1),
            _epoch.LossSum / _epoch.Images, (double)_epoch.Correct / _epoch.Images, test?.Loss, test?.Accuracy,
            _epoch.Images / _epoch.Seconds, _epoch.Seconds);
        Position = new TrainingPosition(epochNumber, 0, Position.GlobalStep);
        _epoch = default;
        foreach (var hook in Options.EpochHooks)
            hook.AfterEpoch(_model, epochNumber, Options.Epochs);
        if (Options.MetricsCsvPath is { } csv)
            MetricsCsv.Append(csv, metrics);
        if (Options.CheckpointPath is { } checkpoint && (epochNumber % Options.CheckpointEveryEpochs == 0 || IsFinished))
            SaveCheckpoint(checkpoint);
        EpochCompleted?.Report(metrics);
        return metrics;
    }

    /// <summary>
    /// Writes a checkpoint atomically: model state, momentum buffers, position (the schedule position
    /// is the global step), the running sums of the epoch in progress, torch's generator state, and
    /// the recipe's identity (seed, batch size, groups, normalisation).
    /// </summary>
    public void SaveCheckpoint(string path) => SaveCheckpoint(path, decorateOutput: null);

    internal void SaveCheckpoint(string path, Func<Stream, Stream>? decorateOutput)
    {
        using var scope = torch.NewDisposeScope();
        var tensors = _model.state_dict().Select(kv => (Checkpoint.ModelPrefix + kv.Key, kv.Value)).ToList();
        foreach (var (name, state) in MomentumStates())
        {
            if (state.momentum_buffer is { } buffer)
                tensors.Add((Checkpoint.MomentumPrefix + name, buffer));
        }
        tensors.Add((Checkpoint.TorchRngName, torch.random.get_rng_state()));
        Checkpoint.Write(path, Architecture, tensors, TrainingInfo(), decorateOutput);
    }

    /// <summary>
    /// Restores a checkpoint written by <see cref="SaveCheckpoint(string)"/> so that training continues exactly
    /// where it stopped. Everything is checked first (integrity, architecture, every parameter and
    /// buffer name and shape, groups, momentum buffers, seed, batch size, training-set size, input
    /// normalisation and padding); on any
    /// mismatch nothing is changed. Give the trainer the same options to continue bit-exactly.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The checkpoint does not fit this trainer.</exception>
    /// <exception cref="InvalidDataException">The file is damaged.</exception>
    public CheckpointInfo Resume(string path)
    {
        using var scope = torch.NewDisposeScope();
        var content = Checkpoint.Read(path);
        var modelState = _model.state_dict();
        var mismatches = Checkpoint.CompareModel(content, Architecture, modelState);
        var training = content.Training;
        if (training is null)
            mismatches.Add("it is a model-only checkpoint, without training state");
        else
            mismatches.AddRange(CompareTraining(content.Tensors, training));
        if (mismatches.Count > 0)
            throw Checkpoint.Mismatch(path, $"this trainer of {Architecture}", mismatches);

        Checkpoint.CopyModelState(content.Tensors, modelState);
        foreach (var (name, state) in MomentumStates())
        {
            state.momentum_buffer?.Dispose();
            state.momentum_buffer = content.Tensors.TryGetValue(Checkpoint.MomentumPrefix + name, out var buffer) ? buffer.DetachFromDisposeScope() : null;
        }
        torch.random.set_rng_state(content.Tensors[Checkpoint.TorchRngName]);
        Position = training!.Position;
        _epoch = new EpochTotals(training.EpochLossSum, training.EpochCorrect, training.EpochImages, training.EpochSeconds);
        return content.Info;
    }

    private IEnumerable<string> CompareTraining(IReadOnlyDictionary<string, Tensor> tensors, CheckpointTrainingInfo saved)
    {
        if (saved.Seed != Options.Seed)
            yield return $"seed: the checkpoint's is {saved.Seed}, the trainer's {Options.Seed}";
        if (saved.BatchSize != Options.BatchSize)
            yield return $"batch size: the checkpoint's is {saved.BatchSize}, the trainer's {Options.BatchSize}";
        if (saved.TrainImages != _trainLoader.Dataset.Count)
            yield return $"training images: the checkpoint was trained on {saved.TrainImages}, the trainer has {_trainLoader.Dataset.Count}";
        if (!saved.Normalization.Mean.SequenceEqual(Normalization.Mean) || !saved.Normalization.Std.SequenceEqual(Normalization.Std))
            yield return $"normalization: the checkpoint's is mean [{string.Join(", ", saved.Normalization.Mean)}] std [{string.Join(", ", saved.Normalization.Std)}], the trainer's mean [{string.Join(", ", Normalization.Mean)}] std [{string.Join(", ", Normalization.Std)}]";
        if (saved.PadTo != Options.PadTo)
            yield return $"padding: the checkpoint was trained with PadTo {saved.PadTo?.ToString() ?? "none"}, the trainer has {Options.PadTo?.ToString() ?? "none"}";
        if (saved.Position.Epoch > Options.Epochs)
            yield return $"epochs: the checkpoint is at epoch {saved.Position.Epoch}, past the trainer's {Options.Epochs}";
        if (saved.Position.BatchInEpoch >= BatchesPerEpoch)
            yield return $"position: batch {saved.Position.BatchInEpoch} of an epoch of {BatchesPerEpoch} batches";
        string Groups(IEnumerable<ParameterGroupInfo> groups) =>
            string.Join(" | ", groups.Select(g => $"{g.Name}: {string.Join(", ", g.ParameterNames)}"));
        if (Groups(saved.ParameterGroups) != Groups(ParameterGroups))
            yield return $"parameter groups: the checkpoint has [{Groups(saved.ParameterGroups)}], the trainer [{Groups(ParameterGroups)}]";

        var parameters = _model.named_parameters().ToDictionary(p => p.name, p => CheckpointTensorInfo.Of(p.name, p.parameter));
        foreach (var (key, tensor) in tensors.Where(t => t.Key.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal)))
        {
            string name = key[Checkpoint.MomentumPrefix.Length..];
            var entry = CheckpointTensorInfo.Of(name, tensor);
            if (!parameters.TryGetValue(name, out var parameter))
                yield return $"momentum buffer of '{name}', which is not a parameter of the model";
            else if (!entry.Shape.SequenceEqual(parameter.Shape) || entry.DType != parameter.DType)
                yield return $"momentum buffer of '{name}': the checkpoint has {entry.ShapeText}, the parameter is {parameter.ShapeText}";
        }
        if (!tensors.ContainsKey(Checkpoint.TorchRngName))
            yield return "the torch generator state is missing";
    }

    private CheckpointTrainingInfo TrainingInfo() => new(Position, Options.Seed, Options.Epochs, Options.BatchSize, _trainLoader.Dataset.Count,
        Options.LearningRate, Options.Momentum, Options.Nesterov, _schedule.Description, Options.LabelSmoothing, ParameterGroups,
        Normalization, Options.PadTo, _epoch.LossSum, _epoch.Correct, _epoch.Images, _epoch.Seconds);

    /// <summary>Each trainable parameter's name with its SGD state, in optimizer order.</summary>
    private IEnumerable<(string Name, SGD.State State)> MomentumStates()
    {
        var states = _optimizer.state_dict().State;
        int index = 0;
        foreach (var group in ParameterGroups)
        foreach (string name in group.ParameterNames)
            yield return (name, (SGD.State)states[index++]);
    }

    private static List<ParameterGroupInfo> BuildGroups(List<(string name, Parameter parameter)> parameters, TrainingOptions options)
    {
        var rules = options.ParameterGroups;
        var members = Enumerable.Range(0, rules.Count + 1).Select(_ => new List<string>()).ToArray();
        foreach (var (name, parameter) in parameters)
        {
            int rule = 0;
            while (rule < rules.Count && !rules[rule].Matches(name, parameter))
                rule++;
            members[rule == rules.Count ? 0 : rule + 1].Add(name);
        }
        var groups = new List<ParameterGroupInfo>();
        if (members[0].Count > 0)
            groups.Add(new ParameterGroupInfo(DefaultGroup, options.WeightDecay, members[0]));
        for (int i = 0; i < rules.Count; i++)
        {
            if (members[i + 1].Count > 0)
                groups.Add(new ParameterGroupInfo(rules[i].Name, rules[i].WeightDecay, members[i + 1]));
        }
        return groups;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _optimizer.Dispose();
        _trainLoader.Dispose();
        _testLoader?.Dispose();
    }

    private readonly record struct EpochTotals(double LossSum, long Correct, long Images, double Seconds)
    {
        public EpochTotals Add(double loss, long correct, int images, double seconds) =>
            new(LossSum + loss, Correct + correct, Images + images, Seconds + seconds);
    }
}
