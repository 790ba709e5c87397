using CeDsl.Layers;
using CeDsl.Selective;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Folding;

/// <summary>
/// Fills a generated <c>Folded</c> module from the trained module it folds, path by path (the
/// modules' names in their state dicts): what the generated <c>FoldFrom</c> methods call. Both
/// modules must have been built with the same constructor arguments; a module present in one
/// and absent in the other, or parts whose state does not match, are refused.
/// </summary>
public sealed class ModuleFolder
{
    private readonly Dictionary<string, nn.Module> trained;
    private readonly Dictionary<string, nn.Module> folded;
    private readonly string prefix;

    /// <summary>
    /// Prepares to fold <paramref name="trained"/> into <paramref name="folded"/>.
    /// </summary>
    /// <param name="trained">The trained module, in evaluation mode.</param>
    /// <param name="folded">The folded module to fill (built empty with the same constructor arguments).</param>
    /// <param name="name">The trained module's name in its network (empty for the root), for error messages.</param>
    /// <exception cref="InvalidOperationException"><paramref name="trained"/> or one of its submodules is in training mode.</exception>
    public ModuleFolder(nn.Module trained, nn.Module folded, string name = "")
    {
        ArgumentNullException.ThrowIfNull(trained);
        ArgumentNullException.ThrowIfNull(folded);
        ArgumentNullException.ThrowIfNull(name);
        prefix = name.Length == 0 ? "" : name + ".";
        if (trained.training)
            throw TrainingMode(name.Length == 0 ? trained.GetType().Name : $"{name} ({trained.GetType().Name})");
        this.trained = Modules(trained);
        this.folded = Modules(folded);
        foreach (var (path, module) in this.trained)
        {
            if (module.training)
                throw TrainingMode(Describe(path, module));
        }
    }

    /// <summary>The full name of <paramref name="path"/> in the network, for error messages.</summary>
    public string Name(string path) => prefix + path;

    /// <summary>The trained module at <paramref name="path"/>.</summary>
    public T Trained<T>(string path) where T : nn.Module => Get<T>(trained, path, "trained");

    /// <summary>The folded module at <paramref name="path"/>.</summary>
    public T Folded<T>(string path) where T : nn.Module => Get<T>(folded, path, "folded");

    /// <summary>
    /// Folds the chain <paramref name="conv"/> -> <paramref name="norm"/> -> <paramref name="block"/> with
    /// <see cref="InferenceFolding.Chain"/> and loads the results into the folded module at the same
    /// paths: the convolution, the norm when it is kept, the block when something remains of it.
    /// Nothing happens when the convolution exists in neither module (a member the constructor's
    /// arguments leave out); the block is absent when the trained module has none.
    /// </summary>
    public void Chain(string conv, string? norm = null, string? block = null)
    {
        if (!Exists(conv))
            return;
        var blockModule = block is not null && trained.ContainsKey(block) ? Trained<nn.Module<Tensor, Tensor>>(block) : null;
        var names = new ChainNames(Name(conv), norm is null ? "norm" : Name(norm), block is null ? "block" : Name(block));
        using var chain = InferenceFolding.Chain(
            Trained<Conv2d>(conv), norm is null ? null : Trained<nn.Module<Tensor, Tensor>>(norm), blockModule, names);
        Load(conv, chain.Conv);
        LoadPart(norm, chain.Norm);
        LoadPart(block, chain.Block);
    }

    /// <summary>Loads what remains of a chain's norm or block, which the folded module must hold exactly when it remains.</summary>
    private void LoadPart(string? path, nn.Module? part)
    {
        if (path is null)
            return;
        if (part is not null)
            Load(path, part);
        else if (folded.ContainsKey(path))
            throw new InvalidOperationException(
                $"Cannot fold {Name(path)}: it folds into the convolution, but the folded module has a '{path}'; " +
                "the folded module must be built with the same constructor arguments as the trained one.");
    }

    /// <summary>
    /// A CE or AII block whose norm does not follow a convolution: folded on its own
    /// (<see cref="InferenceFolding.ChannelEquilibrium"/>, <see cref="InferenceFolding.AdaptiveInstanceInverse"/>);
    /// any other module is copied. Nothing happens when it exists in neither module.
    /// </summary>
    public void Block(string path)
    {
        if (!Exists(path))
            return;
        switch (trained[path])
        {
            case ChannelEquilibrium ce:
                using (var foldedCe = InferenceFolding.ChannelEquilibrium(ce, Name(path)))
                    Load(path, foldedCe);
                break;
            case AdaptiveInstanceInverse aii:
                using (var foldedAii = InferenceFolding.AdaptiveInstanceInverse(aii, Name(path)))
                    Load(path, foldedAii);
                break;
            default:
                Copy(path);
                break;
        }
    }

    /// <summary>
    /// A pruning-only selective convolution (K = 0): the folded module's <see cref="PrunedSelectiveConv2d"/>
    /// is shrunk to the trained <see cref="SelectiveConv2d"/>'s open channels (<see cref="PrunedSelectiveConv2d.PruneFrom"/>).
    /// Nothing happens when it exists in neither module.
    /// </summary>
    public void Prune(string path)
    {
        if (Exists(path))
            Folded<PrunedSelectiveConv2d>(path).PruneFrom(Trained<SelectiveConv2d>(path), $"Cannot fold {Name(path)}: ");
    }

    /// <summary>Copies the state of a module kept as it is (a linear layer, a norm that follows no convolution).
    /// Nothing happens when it exists in neither module.</summary>
    public void Copy(string path)
    {
        if (Exists(path))
            Load(path, trained[path]);
    }

    /// <summary>True when <paramref name="path"/> exists in both modules, false when in neither.</summary>
    private bool Exists(string path)
    {
        bool inTrained = trained.ContainsKey(path), inFolded = folded.ContainsKey(path);
        if (inTrained != inFolded)
            throw new InvalidOperationException(
                $"Cannot fold {Name(path)}: it exists only in the {(inTrained ? "trained" : "folded")} module; " +
                "the folded module must be built with the same constructor arguments as the trained one.");
        return inTrained;
    }

    /// <summary>Copies <paramref name="source"/>'s state into the folded module at <paramref name="path"/>, key by key.</summary>
    private void Load(string path, nn.Module source)
    {
        var target = Folded<nn.Module>(path);
        var from = source.state_dict();
        var to = target.state_dict();
        var missing = to.Keys.Except(from.Keys).ToList();
        var unexpected = from.Keys.Except(to.Keys).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidOperationException(
                $"Cannot load the folding of {Name(path)} into {target.GetType().Name}: keys missing [{string.Join(", ", missing)}], " +
                $"unexpected [{string.Join(", ", unexpected)}]; the folded module must be built with the same constructor arguments as the trained one.");
        using var noGrad = no_grad();
        foreach (var (key, tensor) in to)
        {
            var value = from[key];
            if (!tensor.shape.SequenceEqual(value.shape))
                throw new InvalidOperationException(
                    $"Cannot load the folding of {Name(path)}: '{key}' is [{string.Join(", ", value.shape)}] but the folded module has " +
                    $"[{string.Join(", ", tensor.shape)}]; the folded module must be built with the same constructor arguments as the trained one.");
            tensor.copy_(value);
        }
    }

    private T Get<T>(Dictionary<string, nn.Module> modules, string path, string which) where T : nn.Module
    {
        if (!modules.TryGetValue(path, out var module))
            throw new InvalidOperationException($"Cannot fold {Name(path)}: the {which} module has no submodule '{path}'.");
        return module as T ?? throw new InvalidOperationException(
            $"Cannot fold {Name(path)}: the {which} module's '{path}' is a {module.GetType().Name}, not a {typeof(T).Name}.");
    }

    private string Describe(string path, nn.Module module) => $"{Name(path)} ({module.GetType().Name})";

    private static InvalidOperationException TrainingMode(string module) => new(
        $"Cannot fold {module}: it is in training mode. Folding reproduces the evaluation-mode output from the " +
        "running statistics; call eval() on the network before folding.");

    private static Dictionary<string, nn.Module> Modules(nn.Module root)
    {
        var modules = new Dictionary<string, nn.Module>(StringComparer.Ordinal);
        foreach (var (path, module) in root.named_modules())
            modules[path] = module;
        return modules;
    }
}
