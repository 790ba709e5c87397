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
    /// Reads <paramref name="path"/>, builds the network its metadata names (the folded form for a
    /// folded checkpoint) and loads the state; the file is checked whole before anything is loaded.
    /// </summary>
    /// <exception cref="UserException">The checkpoint names no network of the zoo.</exception>
    /// <exception cref="InvalidDataException">The file is not an intact CeDsl checkpoint.</exception>
    /// <exception cref="CheckpointMismatchException">Its tensors do not fit the network it names.</exception>
    /// <exception cref="UserException">It names no zoo network, or holds NaN or infinite values (its run diverged).</exception>
    public static LoadedModel Load(string path)
    {
        var info = Checkpoint.ReadInfo(path);
        bool folded = info.Architecture.EndsWith(Models.FoldedSuffix, StringComparison.Ordinal);
        string name = folded ? info.Architecture[..^Models.FoldedSuffix.Length] : info.Architecture;
        ZooEntry entry;
        try
        {
            entry = Zoo.Find(name);
        }
        catch (ArgumentException)
        {
            throw new UserException($"Checkpoint '{path}' is of '{info.Architecture}', which is not a network of the cedsl zoo (see cedsl summary --help).");
        }
        var network = folded ? entry.CreateFolded(DataOptions.Classes, DataOptions.Channels) : Models.Create(entry);
        try
        {
            Checkpoint.LoadModel(path, network, info.Architecture);
            if (FirstNonFinite(network) is { } tensor)
                throw new UserException($"Checkpoint '{path}' holds NaN or infinite values in '{tensor}' (the run that wrote it diverged); it cannot be used.");
            network.eval();
            return new LoadedModel(entry, folded, info, network);
        }
        catch
        {
            network.Dispose();
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
