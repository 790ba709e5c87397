using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>
/// Where each layer sits in the network that holds it (<c>layer3.0.ce</c>), so that the errors a layer
/// throws while running say which layer it is. Generated blocks and networks record the paths of their
/// submodules at the end of their constructors; a network is built after its blocks, so its paths, the
/// ones of its state dict, are the ones kept.
/// </summary>
public static class LayerPaths
{
    private static readonly ConditionalWeakTable<nn.Module, string> Paths = new();

    /// <summary>Records the path of every module <paramref name="network"/> holds, relative to it (its state-dict prefix).</summary>
    public static void Record(nn.Module network)
    {
        ArgumentNullException.ThrowIfNull(network);
        foreach (var (path, module) in network.named_modules())
            Paths.AddOrUpdate(module, path);
    }

    /// <summary>The path recorded for <paramref name="module"/>, or null when no network has recorded one.</summary>
    public static string? Of(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return Paths.TryGetValue(module, out var path) ? path : null;
    }

    /// <summary>How a layer's errors name it: <c>layer3.0.ce (ChannelEquilibrium)</c>, or <paramref name="description"/> alone when it has no path.</summary>
    internal static string Describe(nn.Module module, string description) =>
        Paths.TryGetValue(module, out var path) ? $"{path} ({description})" : description;
}
