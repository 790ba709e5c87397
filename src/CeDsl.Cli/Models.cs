using CeDsl.Data;
using CeDsl.IO;
using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Cli;

/// <summary>How the commands build networks for the images they read, and the checkpoints they write.</summary>
internal static class Models
{
    /// <summary>
    /// The input (C, H, W) every command gives a network unless told otherwise: a Fashion-MNIST image as the
    /// networks see it, zero-padded to 32x32. With <see cref="FashionMnist.Classes"/>, what <c>train</c> builds
    /// and <c>summary</c> and <c>bench</c> show by default.
    /// </summary>
    public static IReadOnlyList<long> InputShape { get; } = [FashionMnist.Channels, DataOptions.PadTo, DataOptions.PadTo];

    /// <summary>--network of eval, fold and analyze: the network a plain state dict belongs to.</summary>
    public static System.CommandLine.Option<string> NetworkOption() => new("--network")
    {
        Description = "The network of a plain state dict, which (unlike a CeDsl checkpoint) does not name it: a zoo network, e.g. ce-resnet20, or one of --assembly",
        HelpName = "name",
    };
}

/// <summary>A network with the state of a checkpoint, ready for evaluation.</summary>
/// <param name="Entry">The network's entry: of the zoo, or of --assembly.</param>
/// <param name="IsFolded">Whether it is the folded inference form.</param>
/// <param name="Info">What the checkpoint holds.</param>
/// <param name="Network">The network, in evaluation mode.</param>
internal sealed record LoadedModel(NetworkEntry Entry, bool IsFolded, CheckpointInfo Info, nn.Module<Tensor, Tensor> Network) : IDisposable
{
    /// <summary>
    /// Reads <paramref name="path"/>, builds the network it holds and loads the state, checked whole before
    /// anything is loaded. A CeDsl checkpoint names its network (the folded form for a folded checkpoint);
    /// a plain state dict (PyTorch's torch.save, safetensors or TorchSharp format, recognised by content)
    /// does not, and is loaded strictly into the network <paramref name="network"/>. Names are looked up in <paramref name="networks"/>.
    /// </summary>
    /// <exception cref="UserException">The checkpoint names no network of <paramref name="networks"/>, a plain state dict comes without <paramref name="network"/>,
    /// or the file holds NaN or infinite values (the run that wrote it diverged).</exception>
    /// <exception cref="InvalidDataException">The file is damaged, or a PyTorch file names a Python global a weights-only load refuses.</exception>
    /// <exception cref="CheckpointMismatchException">A checkpoint's tensors do not fit the network it names.</exception>
    /// <exception cref="StateDictMismatchException">A plain state dict's keys or shapes do not fit <paramref name="network"/>.</exception>
    public static LoadedModel Load(string path, string? network, NetworkCatalog networks)
    {
        if (Directory.Exists(path))
            throw new UserException($"Checkpoint '{path}' is a directory, not a file.");
        if (!File.Exists(path))
            throw new UserException($"Checkpoint '{path}' does not exist.");
        var loaded = IsCheckpoint(path) ? LoadCheckpoint(path, network, networks) : LoadStateDict(path, network, networks);
        if (FirstNonFinite(loaded.Network) is { } tensor)
        {
            loaded.Dispose();
            throw new UserException($"Checkpoint '{path}' holds NaN or infinite values in '{tensor}' (the run that wrote it diverged); it cannot be used.");
        }
        return loaded;
    }

    private static bool IsCheckpoint(string path) =>
        StateDict.Detect(path) == StateDict.FileFormat.SafeTensors && SafeTensors.LoadMetadata(path).ContainsKey(Checkpoint.FormatKey);

    private static LoadedModel LoadCheckpoint(string path, string? network, NetworkCatalog networks)
    {
        var info = Checkpoint.ReadInfo(path);
        if (network is not null && !string.Equals(network, info.Network, StringComparison.OrdinalIgnoreCase))
            throw new UserException($"--network: the checkpoint '{path}' is of '{info.Architecture}', not '{network}' (a CeDsl checkpoint names its network; --network is for plain state dicts).");
        NetworkEntry entry;
        try
        {
            entry = networks.Find(info.Network);
        }
        catch (UserException)
        {
            throw new UserException(networks.AssemblyPath is null
                ? $"Checkpoint '{path}' is of '{info.Architecture}', which is not a network of the cedsl zoo (see cedsl summary --help); if it is one of yours, give the assembly that declares it with --assembly."
                : $"Checkpoint '{path}' is of '{info.Architecture}', which is neither a network of {networks.AssemblyPath} ({string.Join(", ", networks.Own.Select(n => n.Name))}) nor of the cedsl zoo.");
        }
        var model = info.IsFolded ? entry.CreateFolded() : entry.Create();
        try
        {
            Checkpoint.LoadModel(path, model, info.Architecture);
            model.eval();
            return new LoadedModel(entry, info.IsFolded, info, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static LoadedModel LoadStateDict(string path, string? network, NetworkCatalog networks)
    {
        if (network is null)
            throw new UserException($"--checkpoint: '{path}' is not a CeDsl checkpoint. If it is a plain state dict (PyTorch's torch.save, " +
                "safetensors), which does not name its network, cedsl eval, fold and analyze load it given the network with --network NAME (cedsl summary --help lists the zoo's).");
        var entry = networks.Find(network);
        var model = entry.Create();
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
    public CeDsl.Data.Normalization Normalization => Info.Training?.Normalization ?? FashionMnist.Normalization;

    /// <summary>The padding the network was trained with.</summary>
    public int? PadTo => Info.Training is { } training ? training.PadTo : DataOptions.PadTo;

    public string Description => IsFolded ? $"{Entry.Name} (folded)" : Entry.Name;

    public void Dispose() => Network.Dispose();
}
