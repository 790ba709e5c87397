using System.Collections.Concurrent;
using System.CommandLine;
using System.Reflection;
using System.Runtime.Loader;
using CeDsl.Architecture;
using CeDsl.Data;
using CeDsl.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Cli;

/// <summary>
/// A network the commands build by name: one of the zoo, or a network declared with CeDsl in the
/// assembly given with <c>--assembly</c>.
/// </summary>
/// <param name="Name">The name commands and checkpoints use: the zoo's (<c>ce-resnet20</c>) or the class's (<c>TinyResNet</c>).</param>
/// <param name="Type">The generated class.</param>
/// <param name="DeclaredInput">The input (C, H, W) it was declared with.</param>
/// <param name="DeclaredClasses">The classes it was declared with.</param>
/// <param name="Factory">Builds it with the given classes and input channels.</param>
/// <param name="FoldedFactory">Builds its empty folded form with the given classes and input channels.</param>
internal sealed record NetworkEntry(string Name, Type Type, IReadOnlyList<long> DeclaredInput, int DeclaredClasses,
    Func<long, long, nn.Module<Tensor, Tensor>> Factory, Func<long, long, nn.Module<Tensor, Tensor>> FoldedFactory)
{
    public static NetworkEntry Of(ZooEntry entry) =>
        new(entry.Name, entry.Type, entry.InputShape, entry.Classes, (c, i) => entry.Create(c, i), (c, i) => entry.CreateFolded(c, i));

    public static NetworkEntry Of(GeneratedNetwork network, string name) =>
        new(name, network.Type, network.Input.Dimensions, network.Classes, (c, i) => network.Create(c, i), (c, i) => network.CreateFolded(c, i));

    /// <summary>
    /// A new network for the images the commands read (<see cref="Models.InputShape"/>, <see cref="FashionMnist.Classes"/>),
    /// or with the given classes and input channels.
    /// </summary>
    /// <exception cref="UserException">The network fixes its classes or input channels to other values.</exception>
    public nn.Module<Tensor, Tensor> Create(long? classes = null, long? inChannels = null) => Build(Factory, classes, inChannels);

    /// <summary>Its empty folded form, built like <see cref="Create"/>, to load a folded checkpoint into.</summary>
    /// <inheritdoc cref="Create" path="/exception"/>
    public nn.Module<Tensor, Tensor> CreateFolded(long? classes = null, long? inChannels = null) => Build(FoldedFactory, classes, inChannels);

    private nn.Module<Tensor, Tensor> Build(Func<long, long, nn.Module<Tensor, Tensor>> factory, long? classes, long? inChannels)
    {
        try
        {
            return factory(classes ?? FashionMnist.Classes, inChannels ?? Models.InputShape[0]);
        }
        catch (ArgumentException e)
        {
            throw new UserException($"{Name}: {e.Message}", e);
        }
    }
}

/// <summary>
/// The networks the commands know by name: the zoo's, and, with <c>--assembly</c>, the networks declared in
/// that assembly (its public classes with <c>[Network]</c>, completed by the CeDsl generator), which come first.
/// </summary>
internal sealed class NetworkCatalog
{
    private static readonly ConcurrentDictionary<string, Assembly> Loaded = new(StringComparer.Ordinal);

    private NetworkCatalog(string? assemblyPath, IReadOnlyList<NetworkEntry> own)
    {
        AssemblyPath = assemblyPath;
        Own = own;
    }

    /// <summary>The zoo alone.</summary>
    public static NetworkCatalog Zoo { get; } = new(null, []);

    /// <summary>The assembly given with --assembly, or null.</summary>
    public string? AssemblyPath { get; }

    /// <summary>The networks of that assembly.</summary>
    public IReadOnlyList<NetworkEntry> Own { get; }

    /// <summary>--assembly: the option of every command that names networks.</summary>
    public static Option<string?> AssemblyOption() => CliOptions.Path("--assembly",
        "A .NET assembly (.dll) of your own networks declared with CeDsl: --model, --network and checkpoints may then name them by class name", "dll");

    /// <summary>The zoo, and the networks of the assembly at <paramref name="assemblyPath"/> when one is given.</summary>
    /// <exception cref="UserException">The file is missing, is not a .NET assembly, cannot be loaded, or declares no network.</exception>
    public static NetworkCatalog Load(string? assemblyPath)
    {
        if (assemblyPath is null)
            return Zoo;
        var assembly = LoadAssembly(assemblyPath);
        IReadOnlyList<GeneratedNetwork> networks;
        try
        {
            networks = GeneratedNetwork.In(assembly);
        }
        catch (Exception e) when (e is ArgumentException or ReflectionTypeLoadException or FileNotFoundException or FileLoadException or TypeLoadException)
        {
            throw new UserException($"--assembly: the networks of '{assemblyPath}' cannot be read: {Message(e)}", e);
        }
        if (networks.Count == 0)
            throw new UserException($"--assembly: '{assemblyPath}' declares no network (a public partial class with [Network], built with the CeDsl package).");
        // A class is named by its name, or by its full name where two share a name.
        var ambiguous = networks.GroupBy(n => n.Name, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        return new NetworkCatalog(assemblyPath, [.. networks.Select(n => NetworkEntry.Of(n, ambiguous.Contains(n.Name) ? n.Type.FullName! : n.Name))]);
    }

    /// <summary>
    /// The network called <paramref name="name"/>: a class of the assembly spelt exactly (name or full name), else
    /// the zoo's network of that name (case-insensitive), else a class of the assembly in another letter case. So a
    /// zoo checkpoint's <c>resnet20</c> stays the zoo's even beside a class <c>ResNet20</c>, which <c>ResNet20</c> names.
    /// </summary>
    /// <exception cref="UserException">No network has that name; the message lists the names.</exception>
    public NetworkEntry Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string wanted = name.Trim();
        if (Own.FirstOrDefault(n => n.Name == wanted || n.Type.FullName == wanted) is { } exact)
            return exact;
        try
        {
            return NetworkEntry.Of(Networks.Zoo.Find(wanted));
        }
        catch (ArgumentException e) when (AssemblyPath is null)
        {
            throw new UserException(e.Message, e);
        }
        catch (ArgumentException) when (Own.FirstOrDefault(n => string.Equals(n.Name, wanted, StringComparison.OrdinalIgnoreCase)
            || string.Equals(n.Type.FullName, wanted, StringComparison.OrdinalIgnoreCase)) is { } own)
        {
            return own;
        }
        catch (ArgumentException e)
        {
            throw new UserException($"No network is called '{name}' in {AssemblyPath} (its networks: {string.Join(", ", Own.Select(n => n.Name))}) " +
                $"or in the zoo ({string.Join(", ", Networks.Zoo.Names)}).", e);
        }
    }

    /// <summary>The zoo entry called <paramref name="name"/>, for commands that work with the zoo's declared inputs.</summary>
    /// <exception cref="UserException">No zoo network has that name; the message lists the closest names.</exception>
    public static ZooEntry FindInZoo(string name)
    {
        try
        {
            return Networks.Zoo.Find(name);
        }
        catch (ArgumentException e)
        {
            throw new UserException(e.Message, e);
        }
    }

    /// <summary>
    /// Loads the assembly into the process's default context: the CeDsl, TorchSharp and .NET assemblies it
    /// references are cedsl's own (so its networks are cedsl's modules); its other dependencies come from its folder.
    /// </summary>
    private static Assembly LoadAssembly(string path)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new UserException($"--assembly: '{path}' is a directory; give the .dll your project builds (e.g. bin/Release/net10.0/MyNetworks.dll).");
        if (!File.Exists(full))
            throw new UserException($"--assembly: '{path}' does not exist.");
        try
        {
            return Loaded.GetOrAdd(full, static file =>
            {
                var resolver = new AssemblyDependencyResolver(file);
                AssemblyLoadContext.Default.Resolving += (context, name) =>
                    resolver.ResolveAssemblyToPath(name) is { } dependency ? context.LoadFromAssemblyPath(dependency) : null;
                return AssemblyLoadContext.Default.LoadFromAssemblyPath(file);
            });
        }
        catch (BadImageFormatException e)
        {
            throw new UserException($"--assembly: '{path}' is not a .NET assembly.", e);
        }
        catch (Exception e) when (e is FileLoadException or InvalidOperationException)
        {
            throw new UserException($"--assembly: '{path}' cannot be loaded: {Message(e)}", e);
        }
    }

    private static string Message(Exception e) => e is ReflectionTypeLoadException load && load.LoaderExceptions.FirstOrDefault(x => x is not null) is { } first
        ? first.Message
        : e.Message;
}
