using System.Diagnostics;
using CeDsl.Analysis;
using CeDsl.Data;
using CeDsl.IO;
using CeDsl.Layers;
using CeDsl.Platform;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Training;

/// <summary>
/// Trains an image classifier with SGD (momentum, weight decay per parameter group), a learning-rate
/// schedule evaluated per step, label-smoothing cross-entropy and a seeded, augmented batch order.
/// Reports every step and epoch through <see cref="IProgress{T}"/>, writes atomic checkpoints from
/// which <see cref="Resume"/> continues bit-exactly and appends per-epoch metrics to a CSV (after the
/// epoch's checkpoint, so the CSV never lists an epoch the checkpoint does not have). Before the
/// first step it checks that it can write both files (<see cref="PrepareOutputs"/>). A non-finite
/// loss, parameter or buffer stops training with <see cref="TrainingDivergedException"/> before it
/// reaches a checkpoint. No console output. Every step runs in its own dispose scope, so native
/// memory does not grow.
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
    private bool _outputsPrepared;

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
        CheckRepresentable(model, options);
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

    /// <summary>
    /// SGD applies the learning rate and the weight decays as scalars of the parameters' element type,
    /// and libtorch refuses one that overflows it (1e300 for float32) at the first step.
    /// </summary>
    private static void CheckRepresentable(nn.Module model, TrainingOptions options)
    {
        foreach (var dtype in model.parameters().Select(p => p.dtype).Distinct())
        {
            double largest = dtype switch
            {
                ScalarType.Float32 => float.MaxValue,
                ScalarType.Float16 => (double)Half.MaxValue,
                ScalarType.BFloat16 => 3.3895313892515355e38,
                _ => double.MaxValue,
            };
            foreach (var (name, value) in new[] { ("learning rate", options.LearningRate), ("weight decay", options.WeightDecay) }
                .Concat(options.ParameterGroups.Select(g => ($"weight decay of '{g.Name}'", g.WeightDecay))))
            {
                if (value > largest)
                    throw new ArgumentException($"Training options: the {name} {value} does not fit the model's {dtype} parameters (at most {largest}).");
            }
        }
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
    /// Trains to the end of the current epoch, evaluates, writes the checkpoint and appends the
    /// metrics to the CSV as the options say. The first call checks the outputs (<see cref="PrepareOutputs"/>).
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled between two steps or during the evaluation;
    /// <see cref="SaveCheckpoint(string)"/> saves the position (after the epoch's last step, the evaluation is
    /// still to do, and a trainer resumed there does it).</exception>
    /// <exception cref="TrainingDivergedException">The loss, a parameter or a buffer is not finite; nothing was saved.</exception>
    /// <exception cref="IOException">A checkpoint or metrics file cannot be written.</exception>
    public EpochMetrics TrainEpoch(CancellationToken cancellation = default)
    {
        if (IsFinished)
            throw new InvalidOperationException($"{Architecture}: training is finished ({Position.Epoch} of {Options.Epochs} epochs).");
        if (!_outputsPrepared)
            PrepareOutputs();
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

    /// <summary>
    /// Checks, before anything is trained, that the trainer can write its outputs: creates the folders
    /// of <see cref="TrainingOptions.CheckpointPath"/> and <see cref="TrainingOptions.MetricsCsvPath"/>,
    /// reserves (and frees) the space of a checkpoint beside the checkpoint, and reads an existing
    /// metrics file whole. The first <see cref="TrainEpoch"/> calls it; call it earlier to fail before other work.
    /// </summary>
    /// <exception cref="IOException">A folder cannot be created or written, or the disk lacks the space of a checkpoint.</exception>
    /// <exception cref="InvalidDataException">The existing metrics file is damaged; the message names the line.</exception>
    public void PrepareOutputs()
    {
        if (Options.CheckpointPath is { } checkpoint)
            AtomicFile.CheckWritable(checkpoint, CheckpointBytes());
        if (Options.MetricsCsvPath is { } metrics)
        {
            AtomicFile.CheckWritable(metrics, 1 << 16);
            if (File.Exists(metrics))
                MetricsCsv.Read(metrics);
        }
        _outputsPrepared = true;
    }

    /// <summary>An upper bound of a checkpoint's size: the state, the momentum buffers, the generator state and room for the header.</summary>
    private long CheckpointBytes()
    {
        long state = _model.state_dict().Values.Sum(t => t.NumberOfElements * t.ElementSize);
        long momentum = Options.Momentum > 0 ? _model.parameters().Where(p => p.requires_grad).Sum(p => p.NumberOfElements * p.ElementSize) : 0;
        return state + momentum + (1 << 20);
    }

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
            Tensor logits, lossTensor;
            try
            {
                logits = _model.call(batch.Images);
                lossTensor = nn.functional.cross_entropy(logits, batch.Labels, label_smoothing: Options.LabelSmoothing);
                loss = lossTensor.item<float>();
            }
            catch (Exception e) when (e is not OperationCanceledException && NonFiniteCause(() => _model.call(batch.Images)) is { } cause)
            {
                // A layer that refuses non-finite input (CE does) fails before the loss shows the divergence.
                throw Diverged($"{cause} at epoch {position.Epoch + 1}, batch {position.BatchInEpoch + 1}" +
                    $" (step {position.GlobalStep + 1}), after the step before (learning rate {LearningRateAt(Math.Max(0, position.GlobalStep - 1))})", position, e);
            }
            if (!double.IsFinite(loss))
            {
                string cause = NonFiniteCause(() => _model.call(batch.Images)) is { } found ? $": {found}" : "";
                throw Diverged($"the training loss is {loss} at epoch {position.Epoch + 1}, batch {position.BatchInEpoch + 1} (step {position.GlobalStep + 1}, learning rate {learningRate}){cause}; the step was not applied", position);
            }
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

    private TrainingDivergedException Diverged(string what, TrainingPosition position, Exception? inner = null) =>
        new($"{Architecture} diverged: {what}.", position, inner);

    /// <summary>
    /// Why <paramref name="forward"/> (a forward pass on finite images) failed or computed a non-finite
    /// loss, if the network diverged: a parameter or buffer that is not finite, or else the first module
    /// whose output is not finite, found by running it again with hooks (the failing layer's refusal of
    /// its input aside); null if neither.
    /// </summary>
    private string? NonFiniteCause(Action forward)
    {
        if (FirstNonFinite() is { } tensor)
            return $"'{tensor}' holds non-finite values";
        string? first = null;
        using (var hooks = new OutputHooks())
        {
            foreach (var (name, module) in _model.named_modules())
            {
                if (module is nn.Module<Tensor, Tensor> leaf && !leaf.children().Any())
                {
                    hooks.Add(name, leaf, output =>
                    {
                        if (first is null && output.is_floating_point() && !output.isfinite().all().item<bool>())
                            first = name;
                        return null;
                    });
                }
            }
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            try
            {
                forward();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The failure being explained.
            }
        }
        return first is null ? null : $"the output of '{first}' holds non-finite values (the images are finite)";
    }

    /// <summary>The name of the first parameter, buffer or momentum buffer that holds a NaN or an infinity, or null.</summary>
    private string? FirstNonFinite()
    {
        using var scope = torch.NewDisposeScope();
        foreach (var (name, tensor) in _model.state_dict())
        {
            if (tensor.is_floating_point() && !tensor.isfinite().all().item<bool>())
                return name;
        }
        foreach (var (name, state) in MomentumStates())
        {
            if (state.momentum_buffer is { } buffer && !buffer.isfinite().all().item<bool>())
                return $"momentum of {name}";
        }
        return null;
    }

    private EpochMetrics FinishEpoch(CancellationToken cancellation)
    {
        int epochNumber = Position.Epoch + 1;
        if (FirstNonFinite() is { } tensor)
            throw Diverged($"'{tensor}' holds non-finite values after the last step of epoch {epochNumber} (step {Position.GlobalStep})", Position);
        EvaluationResult? test = null;
        try
        {
            test = _testLoader is not null && Options.EvaluateEveryEpoch ? Evaluate(cancellation) : null;
        }
        catch (Exception e) when (e is not OperationCanceledException && NonFiniteCause(() => Evaluate(cancellation)) is { } cause)
        {
            throw Diverged($"{cause} in the evaluation after epoch {epochNumber} (step {Position.GlobalStep})", Position, e);
        }
        if (test is { Loss: var testLoss } && !double.IsFinite(testLoss))
        {
            string cause = NonFiniteCause(() => Evaluate(cancellation)) ?? $"the test loss is {testLoss}";
            throw Diverged($"{cause} in the evaluation after epoch {epochNumber} (step {Position.GlobalStep})", Position);
        }
        var metrics = new EpochMetrics(epochNumber, Position.GlobalStep, LearningRateAt(Position.GlobalStep - 1),
            _epoch.LossSum / _epoch.Images, (double)_epoch.Correct / _epoch.Images, test?.Loss, test?.Accuracy,
            _epoch.Images / _epoch.Seconds, _epoch.Seconds);
        Position = new TrainingPosition(epochNumber, 0, Position.GlobalStep);
        _epoch = default;
        foreach (var hook in Options.EpochHooks)
            hook.AfterEpoch(_model, epochNumber, Options.Epochs);
        // The checkpoint first: if it cannot be written, the metrics file does not list an epoch the checkpoint lacks.
        if (Options.CheckpointPath is { } checkpoint && (epochNumber % Options.CheckpointEveryEpochs == 0 || IsFinished))
            SaveCheckpoint(checkpoint);
        if (Options.MetricsCsvPath is { } csv)
            MetricsCsv.Append(csv, metrics);
        EpochCompleted?.Report(metrics);
        return metrics;
    }

    /// <summary>
    /// Writes a checkpoint atomically: model state, momentum buffers (zeros for parameters SGD has not
    /// stepped yet, which it treats alike), position (the schedule position is the global step), the
    /// running sums of the epoch in progress, torch's generator state, and the recipe's identity (seed,
    /// batch size, images, augmentation, groups, normalisation).
    /// </summary>
    /// <exception cref="TrainingDivergedException">A parameter, buffer or momentum buffer is not finite; nothing was written.</exception>
    public void SaveCheckpoint(string path) => SaveCheckpoint(path, decorateOutput: null);

    internal void SaveCheckpoint(string path, Func<Stream, Stream>? decorateOutput)
    {
        if (FirstNonFinite() is { } tensor)
            throw Diverged($"'{tensor}' holds non-finite values at epoch {Position.Epoch + 1}, batch {Position.BatchInEpoch + 1} (step {Position.GlobalStep}); '{path}' was not written", Position);
        using var scope = torch.NewDisposeScope();
        var tensors = _model.state_dict().Select(kv => (Checkpoint.ModelPrefix + kv.Key, kv.Value)).ToList();
        if (Options.Momentum > 0)
        {
            foreach (var (name, state) in MomentumStates())
                tensors.Add((Checkpoint.MomentumPrefix + name, state.momentum_buffer ?? torch.zeros_like(Parameter(name))));
        }
        tensors.Add((Checkpoint.TorchRngName, torch.random.get_rng_state()));
        Checkpoint.Write(path, Architecture, tensors, TrainingInfo(), decorateOutput);
    }

    /// <summary>
    /// Restores a checkpoint written by <see cref="SaveCheckpoint(string)"/> so that training continues exactly
    /// where it stopped. Everything is checked first (integrity, architecture, every parameter and
    /// buffer name and shape, groups, momentum buffers, generator state, seed, batch size, the training
    /// and test images, augmentation, input normalisation and padding, <see cref="TrainingOptions.RunSettings"/>);
    /// on any mismatch nothing is changed. Give the trainer the same options to continue bit-exactly.
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

        // Nothing below can fail on what was checked; the generator first, as it is the one native call that checks more.
        torch.random.set_rng_state(content.Tensors[Checkpoint.TorchRngName]);
        foreach (var (name, state) in MomentumStates())
        {
            state.momentum_buffer?.Dispose();
            state.momentum_buffer = content.Tensors.TryGetValue(Checkpoint.MomentumPrefix + name, out var buffer) ? buffer.DetachFromDisposeScope() : null;
        }
        Checkpoint.CopyModelState(content.Tensors, modelState);
        Position = training!.Position;
        _epoch = new EpochTotals(training.EpochLossSum, training.EpochCorrect, training.EpochImages, training.EpochSeconds);
        _outputsPrepared = false;
        return content.Info;
    }

    private IEnumerable<string> CompareTraining(IReadOnlyDictionary<string, Tensor> tensors, CheckpointTrainingInfo saved)
    {
        if (saved.Seed != Options.Seed)
            yield return $"seed: the checkpoint's is {saved.Seed}, the trainer's {Options.Seed}";
        if (saved.BatchSize != Options.BatchSize)
            yield return $"batch size: the checkpoint's is {saved.BatchSize}, the trainer's {Options.BatchSize}";
        if (saved.EvaluationBatchSize != Options.EvaluationBatchSize)
            yield return $"evaluation batch size: the checkpoint's is {saved.EvaluationBatchSize}, the trainer's {Options.EvaluationBatchSize}";
        var trainData = DatasetIdentity.Of(_trainLoader.Dataset);
        if (saved.TrainData.Sha256 != trainData.Sha256)
            yield return $"training images: the checkpoint was trained on {saved.TrainData}, the trainer has {trainData}";
        var testData = TestData();
        if (saved.TestData?.Sha256 != testData?.Sha256)
            yield return $"test images: the checkpoint was evaluated on {saved.TestData?.ToString() ?? "none"}, the trainer has {testData?.ToString() ?? "none"}";
        if (saved.Augmentation != Options.Augmentation)
            yield return $"augmentation: the checkpoint's is {Describe(saved.Augmentation)}, the trainer's {Describe(Options.Augmentation)}";
        if (!saved.Normalization.Mean.SequenceEqual(Normalization.Mean) || !saved.Normalization.Std.SequenceEqual(Normalization.Std))
            yield return $"normalization: the checkpoint's is mean [{string.Join(", ", saved.Normalization.Mean)}] std [{string.Join(", ", saved.Normalization.Std)}], the trainer's mean [{string.Join(", ", Normalization.Mean)}] std [{string.Join(", ", Normalization.Std)}]";
        if (saved.PadTo != Options.PadTo)
            yield return $"padding: the checkpoint was trained with PadTo {saved.PadTo?.ToString() ?? "none"}, the trainer has {Options.PadTo?.ToString() ?? "none"}";
        foreach (string key in saved.RunSettings.Keys.Union(Options.RunSettings.Keys).Order(StringComparer.Ordinal))
        {
            string? before = saved.RunSettings.GetValueOrDefault(key), now = Options.RunSettings.GetValueOrDefault(key);
            if (before != now)
                yield return $"{key}: the checkpoint's is {before ?? "not set"}, the trainer's {now ?? "not set"}";
        }
        var position = saved.Position;
        if (position.Epoch > Options.Epochs || position.Epoch == Options.Epochs && position.BatchInEpoch > 0)
            yield return $"epochs: the checkpoint is at epoch {position.Epoch}, past the trainer's {Options.Epochs}";
        // BatchInEpoch == BatchesPerEpoch: every step of the epoch is done, its evaluation is not.
        bool sameEpochs = saved.BatchSize == Options.BatchSize && saved.TrainData.Images == trainData.Images;
        if (sameEpochs && (position.BatchInEpoch > BatchesPerEpoch || position.GlobalStep != (long)position.Epoch * BatchesPerEpoch + position.BatchInEpoch))
            yield return $"position: epoch {position.Epoch}, batch {position.BatchInEpoch}, step {position.GlobalStep} is not a position of epochs of {BatchesPerEpoch} batches";
        string Groups(IEnumerable<ParameterGroupInfo> groups) =>
            string.Join(" | ", groups.Select(g => $"{g.Name}: {string.Join(", ", g.ParameterNames)}"));
        if (Groups(saved.ParameterGroups) != Groups(ParameterGroups))
            yield return $"parameter groups: the checkpoint has [{Groups(saved.ParameterGroups)}], the trainer [{Groups(ParameterGroups)}]";

        var parameters = _model.named_parameters().Where(p => p.parameter.requires_grad).ToDictionary(p => p.name, p => CheckpointTensorInfo.Of(p.name, p.parameter));
        foreach (var (key, tensor) in tensors.Where(t => t.Key.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal)))
        {
            string name = key[Checkpoint.MomentumPrefix.Length..];
            var entry = CheckpointTensorInfo.Of(name, tensor);
            if (!parameters.TryGetValue(name, out var parameter))
                yield return $"momentum buffer of '{name}', which is not a trainable parameter of the model";
            else if (!entry.Shape.SequenceEqual(parameter.Shape) || entry.DType != parameter.DType)
                yield return $"momentum buffer of '{name}': the checkpoint has {entry.ShapeText}, the parameter is {parameter.ShapeText}";
        }
        if (saved.Momentum > 0)
        {
            foreach (string name in parameters.Keys.Where(n => !tensors.ContainsKey(Checkpoint.MomentumPrefix + n)))
                yield return $"the momentum buffer of '{name}' is missing (the checkpoint was trained with momentum {saved.Momentum})";
        }
        foreach (var (key, tensor) in tensors)
        {
            if (tensor.is_floating_point() && !tensor.isfinite().all().item<bool>())
                yield return $"'{key}' holds non-finite values";
        }
        if (!tensors.TryGetValue(Checkpoint.TorchRngName, out var rng))
            yield return $"the torch generator state ('{Checkpoint.TorchRngName}') is missing";
        else if (GeneratorStateProblem(rng) is { } problem)
            yield return $"the torch generator state ('{Checkpoint.TorchRngName}') {problem}";
    }

    /// <summary>
    /// Why libtorch's <c>set_rng_state</c> would refuse <paramref name="state"/>, or null. It aborts the
    /// process on a state it refuses (TorchSharp does not turn that error into an exception), so what it
    /// checks is checked here first: the size of a CPUGeneratorImplState and its mt19937 fields, which
    /// come first in it (seed u64, left i32, seeded i32, next u64, 624 u64 of state).
    /// </summary>
    private static string? GeneratorStateProblem(Tensor state)
    {
        using var current = torch.random.get_rng_state();
        if (state.dtype != current.dtype || !state.shape.SequenceEqual(current.shape))
            return $"is [{string.Join(", ", state.shape)}] {state.dtype}; this libtorch's is [{string.Join(", ", current.shape)}] {current.dtype}";
        const int MersenneStateWords = 624;
        var bytes = state.contiguous().bytes;
        int left = BitConverter.ToInt32(bytes[8..12]), seeded = BitConverter.ToInt32(bytes[12..16]);
        ulong next = BitConverter.ToUInt64(bytes[16..24]);
        return seeded == 1 && left is > 0 and <= MersenneStateWords && next <= MersenneStateWords
            ? null
            : $"is not a valid mt19937 state (seeded {seeded}, left {left}, next {next})";
    }

    private static string Describe(Augmentation? augmentation) => augmentation is null
        ? "none"
        : $"crop padding {augmentation.CropPadding}{(augmentation.HorizontalFlip ? " and horizontal flip" : "")}";

    private DatasetIdentity? TestData() => _testLoader is not null && Options.EvaluateEveryEpoch ? DatasetIdentity.Of(_testLoader.Dataset) : null;

    private Parameter Parameter(string name) => _model.named_parameters().First(p => p.name == name).parameter;

    private CheckpointTrainingInfo TrainingInfo() => new(Position, Options.Seed, Options.Epochs, Options.BatchSize, Options.EvaluationBatchSize,
        DatasetIdentity.Of(_trainLoader.Dataset), TestData(), Options.Augmentation,
        Options.LearningRate, Options.Momentum, Options.Nesterov, _schedule.Description, Options.LabelSmoothing, ParameterGroups,
        Normalization, Options.PadTo, Options.RunSettings, _epoch.LossSum, _epoch.Correct, _epoch.Images, _epoch.Seconds);

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
