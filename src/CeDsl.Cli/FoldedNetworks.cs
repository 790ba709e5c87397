using System.Reflection;
using CeDsl.Networks;
using static TorchSharp.torch;

namespace CeDsl.Cli;

/// <summary>The folded inference form of a zoo network: the generated nested class <c>X.Folded</c>.</summary>
internal static class FoldedNetworks
{
    /// <summary>
    /// An empty <c>X.Folded</c> for Fashion-MNIST, built with the same arguments as <see cref="Models.Create"/>
    /// (its constructor takes the same parameters as X's), to load a folded checkpoint into.
    /// </summary>
    /// <exception cref="UserException">The network has no folded form.</exception>
    public static nn.Module<Tensor, Tensor> Create(ZooEntry entry)
    {
        var folded = entry.Type.GetNestedType("Folded", BindingFlags.Public)
            ?? throw new UserException($"'{entry.Name}' ({entry.Type.Name}) has no folded form.");
        var arguments = new Dictionary<string, object?>
        {
            ["classes"] = (long)DataOptions.Classes,
            ["inChannels"] = (long)DataOptions.Channels,
            ["device"] = null,
            ["dtype"] = null,
        };
        var constructor = folded.GetConstructors().SingleOrDefault(c => c.GetParameters().All(p => arguments.ContainsKey(p.Name!)))
            ?? throw new InvalidOperationException($"{entry.Type.Name}.Folded has no constructor taking (classes, inChannels, device, dtype) like {entry.Type.Name}'s.");
        return (nn.Module<Tensor, Tensor>)constructor.Invoke([.. constructor.GetParameters().Select(p => arguments[p.Name!])]);
    }
}
