using CeDsl.IO;
using CeDsl.Networks;
using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Cli;

/// <summary>Zoo networks for Fashion-MNIST (10 classes, 1 channel) and the checkpoints the commands write.</summary>
internal static class Models
{
    /// <summary>The architecture recorded in a folded checkpoint is the network's name and this suffix.</summary>
    public const string FoldedSuffix = "/folded";

    /// <summary>The zoo entry called <paramref name="name"/>.</summary>
    /// <exception cref="UserException">No network has that name; the message lists the closest names.</exception>
    public static ZooEntry Find(string name)
    {
        try
        {
            return Zoo.Find(name);
        }
        catch (ArgumentException e)
        {
            throw new UserException(e.Message, e);
        }
    }

    /// <summary>A new network for Fashion-MNIST.</summary>
    public static nn.Module<Tensor, Tensor> Create(ZooEntry entry) => entry.Create(DataOptions.Classes, DataOptions.Channels);

    /// <summary>--network of eval and fold: the zoo network a plain state dict belongs to.</summary>
    public static System.CommandLine.Option<string> NetworkOption() => new("--network")
    {
        Description = "The zoo network of a plain state dict, which (unlike a CeDsl checkpoint) does not name it, e.g. ce-resnet20",
        HelpName = "name",
    };

    /// <summary>The input shape (C, H, W) of a Fashion-MNIST image as the networks see it.</summary>
    public static long[] InputShape => [DataOptions.Channels, DataOptions.PadTo, DataOptions.PadTo];
}

/// <summary>A network with the state of a checkpoint, ready for evaluation.</summary>
/// <param name="Entry">The zoo entry.</param>
/// <param name="IsFolded">Whether it is the folded inference form.</param>
/// <param name="Info">What the checkpoint holds.</param>
/// <param name="Network">The network, in evaluation mode.</param>
internal sealed record LoadedModel(ZooEntry Entry, bool IsFolded, CheckpointInfo Info, nn.Module<Tensor, Tensor> Network) : IDisposable
{
    /// <summary>
    /// Reads <paramref name="path"/>, builds the network it holds and loads the state, checked whole before
    /// anything is loaded. A CeDsl checkpoint names its network (the folded form for a folded checkpoint);
    /// a plain state dict (PyTorch's torch.save, safetensors or TorchSharp format, recognised by content)
    /// does not, and is loaded strictly into the zoo network <paramref name="network"/>.
    /// </summary>
    /// <exception cref="UserException">The checkpoint names no network of the zoo, a plain state dict comes without <paramref name="network"/>,
    /// or the file holds NaN or infinite values (the run that wrote it diverged).</exception>
    /// <exception cref="InvalidDataException">The file is damaged, or a PyTorch file names a Python global a weights-only load refuses.</exception>
    /// <exception cref="CheckpointMismatchException">A checkpoint's tensors do not fit the network it names.</exception>
    /// <exception cref="StateDictMismatchException">A plain state dict's keys or shapes do not fit <paramref name="network"/>.</exception>
    public static LoadedModel Load(string path, string? network = null)
    {
        if (Directory.Exists(path))
            throw new UserException($"Checkpoint '{path}' is a directory, not a file.");
        if (!File.Exists(path))
            throw new UserException($"Checkpoint '{path}' does not exist.");
        var loaded = IsCheckpoint(path) ? LoadCheckpoint(path, network) : LoadStateDict(path, network);
        if (FirstNonFinite(loaded.Network) is { } tensor)
        {
            loaded.Dispose();
            throw new UserException($"Checkpoint '{path}' holds NaN or infinite values in '{tensor}' (the run that wrote it diverged); it cannot be used.");
        }
        return loaded;
    }

    private static bool IsCheckpoint(string path) =>
        StateDict.Detect(path) == StateDict.FileFormat.SafeTensors && SafeTensors.LoadMetadata(path).ContainsKey(Checkpoint.FormatKey);

    private static LoadedModel LoadCheckpoint(string path, string? network)
    {
        var info = Checkpoint.ReadInfo(path);
        bool folded = info.Architecture.EndsWith(Models.FoldedSuffix, StringComparison.Ordinal);
        string name = folded ? info.Architecture[..^Models.FoldedSuffix.Length] : info.Architecture;
        if (network is not null && !string.Equals(network, name, StringComparison.OrdinalIgnoreCase))
            throw new UserException($"--network: the checkpoint '{path}' is of '{info.Architecture}', not '{network}' (a CeDsl checkpoint names its network; --network is for plain state dicts).");
        ZooEntry entry;
        try
        {
            entry = Zoo.Find(name);
        }
        catch (ArgumentException)
        {
            throw new UserException($"Checkpoint '{path}' is of '{info.Architecture}', which is not a network of the cedsl zoo (see cedsl summary --help).");
        }
        var model = folded ? entry.CreateFolded(DataOptions.Classes, DataOptions.Channels) : Models.Create(entry);
        try
        {
            Checkpoint.LoadModel(path, model, info.Architecture);
            model.eval();
            return new LoadedModel(entry, folded, info, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static LoadedModel LoadStateDict(string path, string? network)
    {
        if (network is null)
            throw new UserException($"--checkpoint: '{path}' is not a CeDsl checkpoint. If it is a plain state dict (PyTorch's torch.save, " +
                "safetensors), which does not name its network, cedsl eval, fold and analyze load it given the zoo network with --network NAME (cedsl summary --help lists them).");
        var entry = Models.Find(network);
        var model = Models.Create(entry);
        try
        {
            StateDict.Load(model, path, strict: true);
            model.eval();
            var tensors = model.state_dict().Select(kv => new CheckpointTensorInfo(kv.Key, kv.Value.dtype.ToString(), kv.Value.shape)).ToList();
            return new LoadedModel(entry, false, new CheckpointInfo(entry.Name, tensors, Training: null), model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static string? FirstNonFinite(nn.Module network)
    {
        using var scope = torch.NewDisposeScope();
        return network.state_dict().FirstOrDefault(t => t.Value.is_floating_point() && !t.Value.isfinite().all().item<bool>()).Key;
    }

    /// <summary>The normalisation the network was trained with: the checkpoint's, or the commands' own.</summary>
    public CeDsl.Data.Normalization Normalization => Info.Training?.Normalization ?? DataOptions.Normalization;

    /// <summary>The padding the network was trained with.</summary>
    public int? PadTo => Info.Training is { } training ? training.PadTo : DataOptions.PadTo;

    public string Description => IsFolded ? $"{Entry.Name} (folded)" : Entry.Name;

    public void Dispose() => Network.Dispose();
}
