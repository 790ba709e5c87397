using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CeDsl.Analysis;
using CeDsl.Data;
using CeDsl.Selective;
using CeDsl.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

using static CeDsl.Cli.Formatting;

namespace CeDsl.Cli.Commands;

/// <summary>The recipe and files of a <c>cedsl train</c> run.</summary>
internal sealed record TrainSettings(string Model, int Epochs, int BatchSize, double LearningRate, double Momentum, double WeightDecay,
    string Schedule, int[]? Milestones, double Warmup, double LabelSmoothing, int Seed, bool Augment, string OutDirectory, string? Resume,
    bool Force, int? PauseAfter, double? SelectGamma, TimeSpan ProgressInterval)
{
    public string CheckpointPath => Path.Combine(OutDirectory, TrainCommand.CheckpointFile);

    public string MetricsPath => Path.Combine(OutDirectory, TrainCommand.MetricsFile);

    public LearningRateSchedule BuildSchedule()
    {
        var schedule = Schedule == "step"
            ? LearningRateSchedule.Step(Milestones ?? DefaultMilestones(Epochs))
            : LearningRateSchedule.Cosine(Epochs);
        return Warmup > 0 ? schedule.WithLinearWarmup(Warmup) : schedule;
    }

    /// <summary>Decay by 10 at half and three quarters of the epochs (at least epoch 1, increasing).</summary>
    private static int[] DefaultMilestones(int epochs) =>
        [.. new[] { epochs / 2, epochs * 3 / 4 }.Select(m => Math.Max(m, 1)).Distinct()];
}

/// <summary>
/// <c>cedsl train</c>: trains a network (of the zoo or of --assembly) on Fashion-MNIST with SGD, a live progress bar (one line
/// per epoch when the output is not a terminal), per-epoch metrics CSV, an atomic checkpoint after
/// every epoch, and <c>--resume</c> that continues exactly.
/// </summary>
internal sealed class TrainCommand
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string MetricsFile = "metrics.csv";

    private readonly DataOptions _data = new(withTrain: true);

    private readonly Option<string> _model = new("--model")
    {
        Description = "Network of the zoo (see README: resnet20, ce-resnet20, se-resnet20, bd-resnet20, aii-resnet20, vgg16-bn, ...) or of --assembly",
        DefaultValueFactory = _ => "ce-resnet20",
    };
    private readonly Option<string?> _assembly = NetworkCatalog.AssemblyOption();
    private readonly Option<int> _epochs = CliOptions.Integer("--epochs", "Epochs to train", 5, 1, "must be positive");
    private readonly Option<int> _batch = CliOptions.Integer("--batch", "Training images per step", 128, 2,
        "must be at least 2 (batch normalization needs batch statistics)");
    private readonly Option<double> _learningRate = CliOptions.Real("--lr", "Base learning rate of SGD", 0.1, v => v is > 0 and <= float.MaxValue,
        "must be positive and at most 3.4e38 (the networks' parameters are float32)");
    private readonly Option<double> _momentum = CliOptions.Real("--momentum", "SGD momentum", 0.9, v => v is >= 0 and < 1, "must be in [0, 1)");
    private readonly Option<double> _weightDecay = CliOptions.Real("--weight-decay", "L2 weight decay of every parameter", 1e-4, v => v is >= 0 and <= float.MaxValue,
        "must be in [0, 3.4e38] (the networks' parameters are float32)");
    private readonly Option<double?> _selectGamma = CliOptions.OptionalReal("--select-gamma",
        "dealloc threshold of every selective convolution, in [0, 1) [default: the network's, 0.001]; only for networks with selective convolutions",
        "gamma", v => v is >= 0 and < 1, "must be in [0, 1)");
    private readonly Option<string> _schedule = CliOptions.Choice("--schedule",
        "Learning-rate schedule: cosine (per step) or step (x0.1 at each milestone epoch)", "cosine", "cosine", "step");
    private readonly Option<int[]?> _milestones = CliOptions.Integers("--milestones",
        "Epochs at which the step schedule decays, increasing and below --epochs [default: half and three quarters of --epochs]", "epoch",
        1, "must be positive, increasing epochs");
    private readonly Option<double> _warmup = CliOptions.Real("--warmup", "Epochs of linear learning-rate warm-up (fractions allowed, at most --epochs)", 0,
        v => v >= 0, "must not be negative");
    private readonly Option<double> _labelSmoothing = CliOptions.Real("--label-smoothing", "Label smoothing of the training loss", 0.1,
        v => v is >= 0 and < 1, "must be in [0, 1)");
    private readonly Option<int> _seed = CliOptions.Integer("--seed", "Seed of the initialisation, shuffle and augmentation", 1, 0, "must not be negative");
    private readonly Option<bool> _augment = new("--augment") { Description = "Random 2-pixel crop and horizontal flip [default: on]" };
    private readonly Option<bool> _noAugment = new("--no-augment") { Description = "Train on the images as they are" };
    private readonly Option<string?> _out = CliOptions.Path("--out", "Run directory for checkpoint.safetensors and metrics.csv [default: runs/<model>]", "dir");
    private readonly Option<string?> _resume = CliOptions.Path("--resume",
        "Continue exactly from this checkpoint (give the same recipe options as the run that wrote it)", "checkpoint");
    private readonly Option<bool> _force = new("--force") { Description = "Start over even if the run directory holds a run (its checkpoint and metrics are deleted)" };
    private readonly Option<int?> _pauseAfter = CliOptions.OptionalInteger("--pause-after",
        "Stop after this many epochs of this invocation (the checkpoint is written; continue with --resume)", "epochs", 1, "must be positive");

    private readonly Option<double> _progressEvery = CliOptions.Real("--progress-every",
        "Seconds between progress lines when the output is not a terminal (a log file, CI); a terminal shows a live progress bar", 30,
        v => v > 0, "must be positive");

    private readonly IProgress<TrainingStep>? _stepObserver;

    private TrainCommand(IProgress<TrainingStep>? stepObserver) => _stepObserver = stepObserver;

    /// <summary>The command; <paramref name="stepObserver"/> sees every training step (tests measure memory with it).</summary>
    public static Command Create(IProgress<TrainingStep>? stepObserver = null) => new TrainCommand(stepObserver).Build();

    private Command Build()
    {
        var command = new Command("train", "Train a network (of the zoo or of --assembly) on Fashion-MNIST (SGD, cosine or step schedule, label smoothing, checkpoints).")
        {
            _model, _assembly, _epochs, _batch, _learningRate, _momentum, _weightDecay, _schedule, _milestones,
            _warmup, _labelSmoothing, _seed, _augment, _noAugment, _out, _resume, _force, _pauseAfter, _selectGamma, _progressEvery,
        };
        _data.AddTo(command);
        CommandAction.Set(command, (parse, output) =>
        {
            var settings = SettingsOf(parse);
            var entry = CheckBeforeLoading(settings, NetworkCatalog.Load(parse.GetValue(_assembly)));
            return Run(settings, entry, _data.Load(parse, output.Output), output, _stepObserver);
        }, stopsCleanly: true);
        return command;
    }

    private TrainSettings SettingsOf(ParseResult parse)
    {
        if (parse.GetValue(_augment) && parse.GetValue(_noAugment))
            throw new UserException("--augment and --no-augment exclude each other.");
        string model = parse.GetValue(_model)!;
        return new TrainSettings(model, parse.GetValue(_epochs), parse.GetValue(_batch), parse.GetValue(_learningRate),
            parse.GetValue(_momentum), parse.GetValue(_weightDecay), parse.GetValue(_schedule)!,
            parse.GetResult(_milestones) is null ? null : parse.GetValue(_milestones),
            parse.GetValue(_warmup), parse.GetValue(_labelSmoothing), parse.GetValue(_seed), !parse.GetValue(_noAugment),
            parse.GetValue(_out) ?? Path.Combine("runs", model.ToLowerInvariant()), parse.GetValue(_resume),
            parse.GetValue(_force), parse.GetValue(_pauseAfter), parse.GetValue(_selectGamma), TimeSpan.FromSeconds(parse.GetValue(_progressEvery)));
    }

    /// <summary>The checks that need no data, so a mistake is reported before the images are read; returns the network to train.</summary>
    private static NetworkEntry CheckBeforeLoading(TrainSettings settings, NetworkCatalog networks)
    {
        CheckOptions(settings);
        var entry = networks.Find(settings.Model);
        RunDirectory.CheckNotOverwriting(settings);
        if (settings.Resume is { } resume)
        {
            if (Directory.Exists(resume))
                throw new UserException($"--resume: '{resume}' is a directory; give the checkpoint file in it (e.g. {Path.Combine(resume, CheckpointFile)}).");
            if (!File.Exists(resume))
                throw new UserException($"--resume: checkpoint '{resume}' does not exist.");
            Checkpoint.ReadInfo(resume);
        }
        return entry;
    }

    /// <summary>The rules that involve several options (each option's own range is checked when it is parsed).</summary>
    private static void CheckOptions(TrainSettings settings)
    {
        if (settings.Milestones is { } milestones)
        {
            if (settings.Schedule != "step")
                throw new UserException("--milestones needs --schedule step.");
            if (milestones.Zip(milestones.Skip(1)).Any(p => p.First >= p.Second))
                throw new UserException($"--milestones must be positive, increasing epochs; got {string.Join(" ", milestones)}.");
            if (milestones[^1] >= settings.Epochs)
                throw new UserException($"--milestones {milestones[^1]} is not below --epochs {settings.Epochs}: the decay would never happen.");
        }
        if (settings.Warmup > settings.Epochs)
            throw new UserException(Invariant($"--warmup {settings.Warmup} is longer than the run (--epochs {settings.Epochs})."));
        if (settings.Resume is not null && settings.Force)
            throw new UserException("--resume and --force exclude each other: --resume continues a run, --force starts one over.");
    }

    /// <summary>Trains; <paramref name="data"/> is disposed.</summary>
    private static int Run(TrainSettings settings, NetworkEntry entry, LoadedData data, CommandOutput output, IProgress<TrainingStep>? stepObserver = null)
    {
        using var _ = data;
        var text = output.Output;
        var trainImages = data.TrainOrThrow;
        if (settings.BatchSize > trainImages.Count)
            throw new UserException(Invariant($"--batch {settings.BatchSize} is more than the {trainImages.Count:N0} training images: lower --batch or train on more images."));

        torch.manual_seed(settings.Seed);
        using var network = entry.Create();
        // Selective convolutions train with the reference schedule and their shifts' own weight decay.
        bool selective = network.modules().Any(m => m is SelectiveConv2d);
        if (settings.SelectGamma is { } gamma)
        {
            if (!selective)
                throw new UserException($"--select-gamma: {entry.Name} has no selective convolutions.");
            foreach (var layer in network.modules().OfType<SelectiveConv2d>())
                layer.Gamma = gamma;
        }
        var schedule = selective ? new SelectiveSchedule((ulong)settings.Seed) : null;
        var options = new TrainingOptions
        {
            EpochHooks = schedule is null ? [] : [schedule],
            ParameterGroups = selective ? [SelectiveSchedule.ShiftWeightDecayGroup] : [],
            Epochs = settings.Epochs,
            BatchSize = settings.BatchSize,
            Seed = (ulong)settings.Seed,
            LearningRate = settings.LearningRate,
            Momentum = settings.Momentum,
            WeightDecay = settings.WeightDecay,
            Schedule = settings.BuildSchedule(),
            LabelSmoothing = settings.LabelSmoothing,
            Augmentation = settings.Augment ? Augmentation.Standard : null,
            PadTo = DataOptions.PadTo,
            Normalization = FashionMnist.Normalization,
            MetricsCsvPath = settings.MetricsPath,
            CheckpointPath = settings.CheckpointPath,
            // What the trainer cannot see but a resumed run must share.
            RunSettings = selective
                ? new Dictionary<string, string> { ["--select-gamma"] = Invariant($"{network.modules().OfType<SelectiveConv2d>().First().Gamma}") }
                : new Dictionary<string, string>(),
        };
        using var trainer = new Trainer(network, entry.Name, data.TrainOrThrow, options, data.Test);
        if (settings.Resume is { } checkpoint)
        {
            var info = trainer.Resume(checkpoint);
            CheckRecipe(checkpoint, info.Training!, trainer);
        }

        long parameters = network.parameters().Sum(p => p.numel());
        text.WriteLine(Invariant($"model: {entry.Name} ({parameters:N0} parameters), input {InputShapes.Format(Models.InputShape)} (28x28 zero-padded), {FashionMnist.Classes} classes"));
        text.WriteLine(Invariant($"recipe: {settings.Epochs} epochs of {trainer.BatchesPerEpoch} batches of {settings.BatchSize}, SGD lr {settings.LearningRate} momentum {settings.Momentum} weight decay {settings.WeightDecay}, {options.EffectiveSchedule}, label smoothing {settings.LabelSmoothing}, augmentation {(settings.Augment ? "crop+flip" : "none")}, seed {settings.Seed}"));
        if (settings.Resume is not null)
            text.WriteLine(Invariant($"resumed from {settings.Resume} at {Describe(trainer.Position, trainer.BatchesPerEpoch)} (step {trainer.Position.GlobalStep})"));
        // Everything the run writes is checked before its first step: the directory, its lock, the space of a checkpoint, the metrics file.
        using var runDirectory = RunDirectory.Open(settings, output.Error);
        try
        {
            trainer.PrepareOutputs();
        }
        catch (IOException e)
        {
            throw new UserException($"--out: {e.Message} Nothing was trained.", e);
        }
        text.WriteLine($"run: {settings.OutDirectory} ({CheckpointFile} after every epoch, {MetricsFile})");
        if (schedule is not null)
            text.WriteLine(Invariant($"selective convolutions: gamma {network.modules().OfType<SelectiveConv2d>().First().Gamma}, dealloc and realloc after each of the first {(settings.Epochs + 1) / 2} epochs, shift weight decay {SelectiveConv2d.ShiftWeightDecay:0.#####}"));
        if (trainer.IsFinished)
        {
            text.WriteLine($"the checkpoint has finished all {settings.Epochs} epochs; nothing to train (evaluate it with cedsl eval --checkpoint {settings.CheckpointPath})");
            return 0;
        }

        var interruption = output.Interruption;
        var completed = new List<EpochMetrics>();
        try
        {
            int stopAt = settings.PauseAfter is { } pause ? Math.Min(settings.Epochs, trainer.Position.Epoch + pause) : settings.Epochs;
            if (output.IsInteractive)
                TrainWithProgressBar(trainer, stopAt, completed, stepObserver, interruption.Token);
            else
                TrainPlain(trainer, stopAt, completed, text, stepObserver, settings.ProgressInterval, interruption.Token);
        }
        catch (OperationCanceledException) when (interruption.Signal is { } signal)
        {
            trainer.SaveCheckpoint(settings.CheckpointPath);
            output.Error.WriteLine($"cedsl train: interrupted by {Interruption.Describe(signal)} at {Describe(trainer.Position, trainer.BatchesPerEpoch)}; saved {settings.CheckpointPath}; continue with the same command and --resume {settings.CheckpointPath}");
            return interruption.ExitCode;
        }
        catch (TrainingDivergedException e)
        {
            string kept = File.Exists(settings.CheckpointPath) && Checkpoint.ReadInfo(settings.CheckpointPath).Training is { } saved
                ? $"{settings.CheckpointPath} keeps {Describe(saved.Position, trainer.BatchesPerEpoch)}, the last finite state"
                : "No checkpoint was written";
            throw new UserException($"{e.Message} {kept}; try a lower --lr.", e);
        }

        double images = completed.Sum(m => m.ImagesPerSecond * m.Seconds), seconds = completed.Sum(m => m.Seconds);
        var last = completed[^1];
        string state = trainer.IsFinished
            ? $"done after {last.Epoch} epochs"
            : $"paused after epoch {last.Epoch} of {settings.Epochs} (continue with --resume {settings.CheckpointPath})";
        text.WriteLine(Invariant($"{state}: test loss {last.TestLoss:F4}, test accuracy {Percent(last.TestAccuracy)}; training {images / seconds:F1} images/s ({images:N0} images in {seconds:F1} s)"));
        if (selective)
            WriteSelectiveState(network, schedule!, text);
        return 0;
    }

    /// <summary>Where training stands, as a person reads it: "the start of training", "the end of epoch 2", "epoch 3 after batch 4 of 7".</summary>
    internal static string Describe(TrainingPosition position, int batchesPerEpoch) => position switch
    {
        { Epoch: 0, BatchInEpoch: 0 } => "the start of training",
        { BatchInEpoch: 0 } => $"the end of epoch {position.Epoch}",
        _ when position.BatchInEpoch == batchesPerEpoch => $"epoch {position.Epoch + 1} after its last batch, before its evaluation",
        _ => $"epoch {position.Epoch + 1} after batch {position.BatchInEpoch} of {batchesPerEpoch}",
    };

    /// <summary>What dealloc and realloc did, and the open input channels, parameters and MACs that remain.</summary>
    private static void WriteSelectiveState(nn.Module<Tensor, Tensor> network, SelectiveSchedule schedule, TextWriter text)
    {
        foreach (var epoch in schedule.History.GroupBy(s => s.Epoch))
            text.WriteLine(Invariant($"selective, after epoch {epoch.Key}: released {epoch.Sum(s => s.Released)}, re-allocated {epoch.Sum(s => s.Copies)} channels"));
        var layers = network.modules().OfType<SelectiveConv2d>().ToList();
        long open = layers.Sum(l => l.OpenChannelCount), all = layers.Sum(l => l.InChannels);
        var summary = NetworkSummary.Of(network, Models.InputShape);
        long saved = layers.Sum(l => (l.InChannels - l.OpenChannelCount) * l.OutChannels * l.KernelSize * l.KernelSize);
        text.WriteLine(Invariant($"selective: {open:N0} of {all:N0} input channels open ({100.0 * open / all:F1} %); closed channels free {saved:N0} convolution weights; {summary.MultiplyAccumulates / 1e6:F1} M multiply-accumulates per image with closed channels skipped"));
    }

    /// <summary>
    /// Without a terminal (a log file, CI, a batch job): a line per epoch, and in between a progress
    /// line every <paramref name="interval"/>, so a long epoch does not look like a hung process.
    /// </summary>
    private static void TrainPlain(Trainer trainer, int stopAt, List<EpochMetrics> completed, TextWriter text,
        IProgress<TrainingStep>? stepObserver, TimeSpan interval, CancellationToken cancellation)
    {
        var sinceLastLine = Stopwatch.StartNew();
        trainer.StepProgress = new StepReporter(step =>
        {
            stepObserver?.Report(step);
            if (sinceLastLine.Elapsed >= interval)
            {
                double remaining = (step.BatchesPerEpoch - step.Batch) * (double)trainer.Options.BatchSize / step.ImagesPerSecond;
                text.WriteLine(Invariant(
                    $"progress: epoch {step.Epoch}/{step.Epochs} batch {step.Batch}/{step.BatchesPerEpoch}, loss {step.EpochLoss:F4} acc {Percent(step.EpochAccuracy)}, {step.ImagesPerSecond:F1} img/s, the epoch's training ends in about {TimeSpan.FromSeconds(Math.Ceiling(remaining)):g}"));
                sinceLastLine.Restart();
            }
        });
        while (trainer.Position.Epoch < stopAt)
        {
            var metrics = trainer.TrainEpoch(cancellation);
            completed.Add(metrics);
            text.WriteLine(EpochLine(metrics, trainer.Options.Epochs));
            sinceLastLine.Restart();
        }
    }

    private static void TrainWithProgressBar(Trainer trainer, int stopAt, List<EpochMetrics> completed,
        IProgress<TrainingStep>? stepObserver, CancellationToken cancellation)
    {
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                while (trainer.Position.Epoch < stopAt)
                {
                    var task = context.AddTask(Invariant($"epoch {trainer.Position.Epoch + 1}/{trainer.Options.Epochs}"), maxValue: trainer.BatchesPerEpoch);
                    task.Value = trainer.Position.BatchInEpoch;
                    trainer.StepProgress = new StepReporter(step =>
                    {
                        stepObserver?.Report(step);
                        task.Value = step.Batch;
                        task.Description = Invariant(
                            $"epoch {step.Epoch}/{step.Epochs} loss {step.EpochLoss:F3} acc {Percent(step.EpochAccuracy, 1)} {step.ImagesPerSecond:F0} img/s");
                    });
                    var metrics = trainer.TrainEpoch(cancellation);
                    completed.Add(metrics);
                    task.StopTask();
                    AnsiConsole.WriteLine(EpochLine(metrics, trainer.Options.Epochs));
                }
            });
    }

    private static string EpochLine(EpochMetrics m, int epochs) => Invariant(
        $"epoch {m.Epoch}/{epochs}  lr {m.LearningRate:F5}  train loss {m.TrainLoss:F4} acc {Percent(m.TrainAccuracy)}  test loss {m.TestLoss:F4} acc {Percent(m.TestAccuracy)}  {m.ImagesPerSecond:F1} img/s  {m.Seconds:F1} s");

    /// <summary>
    /// The library checks what defines the data order (seed, batch size, images, input preparation);
    /// the rest of the recipe must match too, or the continued run would not be the one that was started.
    /// </summary>
    private static void CheckRecipe(string path, CheckpointTrainingInfo saved, Trainer trainer)
    {
        var options = trainer.Options;
        var differences = new List<string>();
        void Compare<T>(string name, T checkpoint, T now)
        {
            if (!EqualityComparer<T>.Default.Equals(checkpoint, now))
                differences.Add(Invariant($"{name} {checkpoint} (now {now})"));
        }
        Compare("--epochs", saved.Epochs, options.Epochs);
        Compare("--lr", saved.LearningRate, options.LearningRate);
        Compare("--momentum", saved.Momentum, options.Momentum);
        Compare("--schedule/--warmup", saved.Schedule, options.EffectiveSchedule.Description);
        Compare("--label-smoothing", saved.LabelSmoothing, options.LabelSmoothing);
        Compare("--weight-decay", string.Join(",", saved.ParameterGroups.Select(g => g.WeightDecay)),
            string.Join(",", trainer.ParameterGroups.Select(g => g.WeightDecay)));
        if (differences.Count > 0)
            throw new UserException($"--resume: checkpoint '{path}' was trained with {string.Join(", ", differences)}; give the same options to continue exactly. Nothing was written.");
    }


    private sealed class StepReporter(Action<TrainingStep> report) : IProgress<TrainingStep>
    {
        public void Report(TrainingStep value) => report(value);
    }
}
