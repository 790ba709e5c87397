using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CeDsl.Data;
using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training;

/// <summary>A tensor stored in a checkpoint.</summary>
/// <param name="Name">The tensor's name, e.g. "layer1.0.conv1.weight".</param>
/// <param name="DType">Its element type, a <see cref="ScalarType"/> name.</param>
/// <param name="Shape">Its shape.</param>
public sealed record CheckpointTensorInfo(string Name, string DType, long[] Shape)
{
    internal static CheckpointTensorInfo Of(string name, Tensor tensor) => new(name, tensor.dtype.ToString(), tensor.shape);

    internal string ShapeText => $"[{string.Join(", ", Shape)}] {DType}";
}

/// <summary>What a checkpoint holds besides its tensors.</summary>
/// <param name="Architecture">The name of the architecture the model state belongs to: the network's name, with
/// <see cref="Checkpoint.FoldedSuffix"/> for its folded inference form.</param>
/// <param name="ModelTensors">The model's parameters and buffers.</param>
/// <param name="Training">The training state, or null for a model-only checkpoint.</param>
public sealed record CheckpointInfo(string Architecture, IReadOnlyList<CheckpointTensorInfo> ModelTensors, CheckpointTrainingInfo? Training)
{
    /// <summary>Whether the checkpoint holds a network's folded inference form (<see cref="Checkpoint.SaveFolded"/>).</summary>
    public bool IsFolded => Architecture.EndsWith(Checkpoint.FoldedSuffix, StringComparison.Ordinal);

    /// <summary>The network's name: <see cref="Architecture"/> without <see cref="Checkpoint.FoldedSuffix"/>.</summary>
    public string Network => IsFolded ? Architecture[..^Checkpoint.FoldedSuffix.Length] : Architecture;
}

/// <summary>The images a run trained or was evaluated on, identified by their content.</summary>
/// <param name="Description">What they are, e.g. "Fashion-MNIST train, embedded subset, 1,000 images" (for messages).</param>
/// <param name="Images">Number of images.</param>
/// <param name="Sha256">SHA-256 of the images and labels (<see cref="ImageDataset.ContentHash"/>).</param>
public sealed record DatasetIdentity(string Description, int Images, string Sha256)
{
    /// <summary>The identity of <paramref name="dataset"/>.</summary>
    public static DatasetIdentity Of(ImageDataset dataset) => new(dataset.Description, dataset.Count, dataset.ContentHash());

    /// <inheritdoc/>
    public override string ToString() => $"{Description} (SHA-256 {Sha256[..Math.Min(12, Sha256.Length)]}...)";
}

/// <summary>The training state recorded in a checkpoint.</summary>
/// <param name="Position">Where training stood.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Epochs">The run's planned epochs.</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="EvaluationBatchSize">Images per evaluation batch.</param>
/// <param name="TrainData">The training images.</param>
/// <param name="TestData">The images evaluated after each epoch, or null.</param>
/// <param name="Augmentation">The training augmentation, or null for none.</param>
/// <param name="LearningRate">Base learning rate.</param>
/// <param name="Momentum">SGD momentum.</param>
/// <param name="Nesterov">Nesterov momentum.</param>
/// <param name="Schedule">The schedule's description.</param>
/// <param name="LabelSmoothing">Label smoothing of the training loss.</param>
/// <param name="ParameterGroups">The SGD parameter groups.</param>
/// <param name="Normalization">The input normalisation the model was trained with.</param>
/// <param name="PadTo">The input padding the model was trained with, or null.</param>
/// <param name="RunSettings">The caller's own settings of the run (<see cref="TrainingOptions.RunSettings"/>).</param>
/// <param name="EpochLossSum">Sum of per-image losses of the epoch in progress.</param>
/// <param name="EpochCorrect">Correct predictions of the epoch in progress.</param>
/// <param name="EpochImages">Images trained in the epoch in progress.</param>
/// <param name="EpochSeconds">Training seconds of the epoch in progress.</param>
public sealed record CheckpointTrainingInfo(TrainingPosition Position, ulong Seed, int Epochs, int BatchSize, int EvaluationBatchSize,
    DatasetIdentity TrainData, DatasetIdentity? TestData, Augmentation? Augmentation,
    double LearningRate, double Momentum, bool Nesterov, string Schedule, double LabelSmoothing,
    IReadOnlyList<ParameterGroupInfo> ParameterGroups, Normalization Normalization, int? PadTo,
    IReadOnlyDictionary<string, string> RunSettings,
    double EpochLossSum, long EpochCorrect, long EpochImages, double EpochSeconds)
{
    /// <summary>Every value that no trainer writes (the JSON is checked against the file's hash, so these mean a writer's bug or a hand edit).</summary>
    internal IEnumerable<string> Problems()
    {
        if (Position.Epoch < 0 || Position.BatchInEpoch < 0 || Position.GlobalStep < 0)
            yield return $"position {Position} has a negative field";
        if (Epochs <= 0 || BatchSize <= 0 || EvaluationBatchSize <= 0)
            yield return $"epochs {Epochs}, batchSize {BatchSize} and evaluationBatchSize {EvaluationBatchSize} must be positive";
        foreach (var (name, data) in new[] { ("trainData", TrainData), ("testData", TestData) })
        {
            if (data is not null && (data.Images <= 0 || data.Sha256.Length != 64 || !data.Sha256.All(char.IsAsciiHexDigitLower)))
                yield return $"{name} must have a positive image count and a SHA-256 of 64 lower-case hex digits";
        }
        if (Augmentation is { CropPadding: < 0 })
            yield return "augmentation.cropPadding must not be negative";
        if (!(LearningRate > 0 && double.IsFinite(LearningRate)) || Momentum is not (>= 0 and < 1) || LabelSmoothing is not (>= 0 and < 1))
            yield return $"learningRate {LearningRate}, momentum {Momentum} or labelSmoothing {LabelSmoothing} is out of range";
        if (string.IsNullOrEmpty(Schedule))
            yield return "schedule is empty";
        if (ParameterGroups.Count == 0 || ParameterGroups.Any(g => g is null || g.ParameterNames is null || g.ParameterNames.Count == 0))
            yield return "parameterGroups must list at least one group, each with parameters";
        if (Normalization.Mean is null || Normalization.Std is null || Normalization.Mean.Count == 0 || Normalization.Mean.Count != Normalization.Std.Count
            || Normalization.Mean.Any(m => !double.IsFinite(m)) || Normalization.Std.Any(s => !(s > 0 && double.IsFinite(s))))
            yield return "normalization must have one finite mean and one positive standard deviation per channel";
        if (PadTo is <= 0)
            yield return $"padTo {PadTo} must be positive or null";
        if (!double.IsFinite(EpochLossSum) || !double.IsFinite(EpochSeconds) || EpochImages < 0 || EpochCorrect < 0 || EpochCorrect > EpochImages)
            yield return "the running sums of the epoch in progress are inconsistent";
    }
}

/// <summary>A checkpoint does not fit the model or trainer it is loaded into; nothing was changed.</summary>
public sealed class CheckpointMismatchException(string message, IReadOnlyList<string> mismatches) : InvalidOperationException(message)
{
    /// <summary>Every mismatch found.</summary>
    public IReadOnlyList<string> Mismatches { get; } = mismatches;
}

/// <summary>
/// CeDsl checkpoints are safetensors files (written atomically by <see cref="SafeTensors"/>): the
/// model's parameters and buffers as "model/&lt;name&gt;", SGD momentum buffers as
/// "momentum/&lt;parameter&gt;" and torch's generator state as "rng/torch"; the metadata names the
/// architecture, holds the training state as JSON and a SHA-256 of the format version, the
/// architecture, the training state and the tensors' names, types, shapes and bytes, so that no
/// change to any of them goes unnoticed. PyTorch reads them with <c>safetensors.torch.load_file</c>.
/// Loading checks the whole file and every name and shape before it changes anything.
/// </summary>
public static class Checkpoint
{
    /// <summary>Metadata key marking a CeDsl checkpoint; its value is the format version.</summary>
    public const string FormatKey = "cedsl.checkpoint";

    /// <summary>The format version written.</summary>
    public const string FormatVersion = "2";

    /// <summary>What the architecture of a folded checkpoint adds to its network's name: <c>ce-resnet20/folded</c>.</summary>
    public const string FoldedSuffix = "/folded";

    internal const string ArchitectureKey = "cedsl.architecture";
    internal const string TrainingKey = "cedsl.training";
    internal const string ContentHashKey = "cedsl.sha256";
    internal const string ModelPrefix = "model/";
    internal const string MomentumPrefix = "momentum/";
    internal const string TorchRngName = "rng/torch";

    /// <summary>Every field of the training state must be present (a missing one is an error, not a default) and non-null unless nullable.</summary>
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
    };

    /// <summary>Reads what a checkpoint holds, after checking its integrity.</summary>
    /// <exception cref="InvalidDataException">The file is not a complete, intact CeDsl checkpoint.</exception>
    public static CheckpointInfo ReadInfo(string path)
    {
        using var scope = torch.NewDisposeScope();
        return Read(path).Info;
    }

    /// <summary>Writes a model-only checkpoint (parameters and buffers) of <paramref name="model"/>.</summary>
    public static void SaveModel(string path, nn.Module model, string architecture) =>
        Write(path, architecture, [.. model.state_dict().Select(kv => (ModelPrefix + kv.Key, kv.Value))], training: null);

    /// <summary>
    /// Writes a model-only checkpoint of <paramref name="folded"/>, the folded inference form of the network
    /// <paramref name="network"/> (<c>Fold()</c>); its architecture is the network's name and <see cref="FoldedSuffix"/>.
    /// </summary>
    public static void SaveFolded(string path, nn.Module folded, string network) => SaveModel(path, folded, network + FoldedSuffix);

    /// <summary>
    /// Loads the model state of a checkpoint (training or model-only) into <paramref name="model"/>.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The checkpoint is of another architecture, or names,
    /// shapes or element types differ; the model is unchanged.</exception>
    /// <exception cref="InvalidDataException">The file is damaged; the model is unchanged.</exception>
    public static CheckpointInfo LoadModel(string path, nn.Module model, string architecture)
    {
        using var scope = torch.NewDisposeScope();
        var content = Read(path);
        var saved = content.Tensors.Where(t => t.Key.StartsWith(ModelPrefix, StringComparison.Ordinal))
            .ToDictionary(t => t.Key[ModelPrefix.Length..], t => t.Value, StringComparer.Ordinal);
        // Modules whose shapes depend on their state (IResizableFromState) are compared as they will be once sized for the file.
        var (shapes, resize) = StateResizing.Plan(model, saved, path);
        var mismatches = CompareModel(content, architecture, model.state_dict(), shapes);
        if (mismatches.Count > 0)
            throw Mismatch(path, architecture, mismatches);
        resize();
        CopyModelState(content.Tensors, model.state_dict());
        return content.Info;
    }

    internal static void Write(string path, string architecture, IReadOnlyList<(string Name, Tensor Tensor)> tensors,
        CheckpointTrainingInfo? training, Func<Stream, Stream>? decorateOutput = null)
    {
        using var scope = torch.NewDisposeScope();
        var cpu = tensors.ToDictionary(t => t.Name, t => t.Tensor.detach().cpu().contiguous(), StringComparer.Ordinal);
        string? trainingJson = training is null ? null : JsonSerializer.Serialize(training, Json);
        var metadata = new Dictionary<string, string>
        {
            [FormatKey] = FormatVersion,
            [ArchitectureKey] = architecture,
            [ContentHashKey] = ContentHash(architecture, trainingJson, cpu),
        };
        if (trainingJson is not null)
            metadata[TrainingKey] = trainingJson;
        SafeTensors.Save(cpu, path, metadata, decorateOutput);
    }

    /// <summary>
    /// Reads and checks a whole checkpoint; its tensors belong to the caller's dispose scope.
    /// </summary>
    internal static CheckpointContent Read(string path)
    {
        InputFile.Check(path, "Checkpoint");
        var metadata = SafeTensors.LoadMetadata(path);
        if (!metadata.TryGetValue(FormatKey, out string? version))
            throw new InvalidDataException($"'{path}' is a safetensors file but not a CeDsl checkpoint (its metadata has no '{FormatKey}'); load plain state dicts with StateDict.Load.");
        if (version != FormatVersion)
            throw new InvalidDataException($"Checkpoint '{path}' has format version {version}; this CeDsl reads version {FormatVersion}.");
        if (!metadata.TryGetValue(ArchitectureKey, out string? architecture) || !metadata.TryGetValue(ContentHashKey, out string? hash))
            throw new InvalidDataException($"Checkpoint '{path}' lacks the '{ArchitectureKey}' or '{ContentHashKey}' metadata.");
        metadata.TryGetValue(TrainingKey, out string? trainingJson);

        var tensors = SafeTensors.Load(path);
        if (ContentHash(architecture, trainingJson, tensors) != hash)
            throw new InvalidDataException($"Checkpoint '{path}' is corrupt: the SHA-256 of its architecture, training state and tensors does not match the one it was written with.");
        return new CheckpointContent(architecture, trainingJson is null ? null : ReadTraining(path, trainingJson), tensors);
    }

    private static CheckpointTrainingInfo ReadTraining(string path, string json)
    {
        CheckpointTrainingInfo? training;
        try
        {
            training = JsonSerializer.Deserialize<CheckpointTrainingInfo>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Checkpoint '{path}' has unreadable training state ('{TrainingKey}'): {e.Message}", e);
        }
        if (training is null)
            throw new InvalidDataException($"Checkpoint '{path}' has training state ('{TrainingKey}') null.");
        if (training.Problems().FirstOrDefault() is { } problem)
            throw new InvalidDataException($"Checkpoint '{path}' has invalid training state ('{TrainingKey}'): {problem}.");
        return training;
    }

    /// <summary>Every way the checkpoint's model state differs from <paramref name="modelState"/>.</summary>
    /// <param name="content">The checkpoint.</param>
    /// <param name="architecture">The model's architecture name.</param>
    /// <param name="modelState">The model's state dict.</param>
    /// <param name="shapes">The shapes to compare with, when they differ from <paramref name="modelState"/>'s (modules sized for the checkpoint).</param>
    internal static List<string> CompareModel(CheckpointContent content, string architecture, IReadOnlyDictionary<string, Tensor> modelState,
        IReadOnlyDictionary<string, long[]>? shapes = null)
    {
        var mismatches = new List<string>();
        if (content.Architecture != architecture)
            mismatches.Add($"architecture: the checkpoint is '{content.Architecture}', the model is '{architecture}'");
        var saved = content.Info.ModelTensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var (name, tensor) in modelState)
        {
            var current = new CheckpointTensorInfo(name, tensor.dtype.ToString(), shapes is not null && shapes.TryGetValue(name, out var shape) ? shape : tensor.shape);
            if (!saved.TryGetValue(name, out var entry))
                mismatches.Add($"'{name}' {current.ShapeText} is missing from the checkpoint");
            else if (!entry.Shape.SequenceEqual(current.Shape) || entry.DType != current.DType)
                mismatches.Add($"'{name}': the checkpoint has {entry.ShapeText}, the model {current.ShapeText}");
        }
        foreach (var name in saved.Keys.Where(n => !modelState.ContainsKey(n)))
            mismatches.Add($"'{name}' {saved[name].ShapeText} is in the checkpoint but not in the model");
        return mismatches;
    }

    internal static CheckpointMismatchException Mismatch(string path, string target, IReadOnlyList<string> mismatches)
    {
        const int shown = 6;
        string list = string.Join("; ", mismatches.Take(shown)) + (mismatches.Count > shown ? $"; and {mismatches.Count - shown} more" : "");
        return new CheckpointMismatchException($"Checkpoint '{path}' does not fit {target}: {list}. Nothing was loaded.", mismatches);
    }

    internal static void CopyModelState(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, Tensor> modelState)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, target) in modelState)
            target.copy_(tensors[ModelPrefix + name]);
    }

    /// <summary>
    /// SHA-256 over the format version, the architecture and the training state (each length-prefixed),
    /// then the tensors in ordinal name order: name, element type, shape, then the bytes.
    /// </summary>
    internal static string ContentHash(string architecture, string? trainingJson, IReadOnlyDictionary<string, Tensor> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string? field in new[] { FormatVersion, architecture, trainingJson })
            hash.AppendData(Encoding.UTF8.GetBytes(field is null ? "-\n" : $"{field.Length}:{field}\n"));
        foreach (var (name, tensor) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes($"{name}\n{tensor.dtype}\n{string.Join(",", tensor.shape)}\n"));
            TensorBytes.ForEachChunk(tensor, (chunk, _) => hash.AppendData(chunk));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}

/// <summary>A checked checkpoint: its metadata and every tensor by its stored name.</summary>
internal sealed record CheckpointContent(string Architecture, CheckpointTrainingInfo? Training, IReadOnlyDictionary<string, Tensor> Tensors)
{
    public CheckpointInfo Info => new(Architecture,
        [.. Tensors.Where(t => t.Key.StartsWith(Checkpoint.ModelPrefix, StringComparison.Ordinal))
            .OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => CheckpointTensorInfo.Of(t.Key[Checkpoint.ModelPrefix.Length..], t.Value))],
        Training);
}
