using CeDsl.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Analysis;

/// <summary>Finds and checks the <see cref="ProbePoint"/>s of a network.</summary>
public static class ProbePoints
{
    /// <summary>
    /// One probe point per <c>BatchNorm2d</c> of <paramref name="model"/>, paired with the modules
    /// that follow it in registration order.
    /// </summary>
    /// <remarks>
    /// The rule: list the modules depth first in registration order (PyTorch's <c>named_modules</c>
    /// order; TorchSharp's <c>named_modules</c> lists all children before any grandchild, so this walks
    /// <c>named_children</c>), descending into containers but treating CeDsl's own layers (CE, BD, AII,
    /// SE, ...) and childless modules as single steps. Each <c>BatchNorm2d</c> takes the step right after
    /// it as its equilibrium module if that is a ChannelEquilibrium, BatchDecorrelation or
    /// AdaptiveInstanceInverse, and then the next step as its rectifier if that is a <c>ReLU</c> or
    /// <c>ReLU6</c>; anything else in between means <see cref="Rectifier.None"/>.
    /// This is the forward order for <c>Sequential</c> networks and for modules that declare their
    /// layers in the order they call them (CeDsl's generated networks, VGG-style code). It is wrong
    /// where registration order differs from forward order (e.g. torchvision's Bottleneck registers
    /// one <c>relu</c> after <c>bn3</c>, so <c>bn1</c> and <c>bn2</c> get no rectifier), and it cannot
    /// see functional ReLUs: give explicit probe points for such networks.
    /// </remarks>
    public static IReadOnlyList<ProbePoint> Discover(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var steps = Steps(model, prefix: "").ToList();
        var points = new List<ProbePoint>();
        for (int i = 0; i < steps.Count; i++)
        {
            if (steps[i].Module is not BatchNorm2d)
                continue;
            int next = i + 1;
            string? equilibrium = null;
            if (next < steps.Count && IsEquilibrium(steps[next].Module))
                equilibrium = steps[next++].Name;
            var (rectifier, activation) = next < steps.Count ? steps[next].Module switch
            {
                ReLU => (Rectifier.ReLU, steps[next].Name),
                ReLU6 => (Rectifier.ReLU6, steps[next].Name),
                _ => (Rectifier.None, (string?)null),
            } : (Rectifier.None, null);
            points.Add(new ProbePoint(steps[i].Name, equilibrium, rectifier, activation));
        }
        return points;
    }

    /// <summary>Every module of <paramref name="model"/> by its path, depth first in registration order.</summary>
    internal static IEnumerable<(string Name, nn.Module Module)> AllModules(nn.Module model, string prefix = "")
    {
        foreach (var (name, child) in model.named_children())
        {
            string path = prefix + name;
            yield return (path, child);
            foreach (var descendant in AllModules(child, path + "."))
                yield return descendant;
        }
    }

    /// <summary>Looks up and type-checks the modules of <paramref name="probes"/>.</summary>
    /// <exception cref="ArgumentException">A name is missing, a module has the wrong type, or a normalization is probed twice.</exception>
    internal static IReadOnlyList<ResolvedProbe> Resolve(nn.Module model, IReadOnlyList<ProbePoint> probes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(probes);
        var modules = new Dictionary<string, nn.Module>();
        foreach (var (name, module) in AllModules(model))
            modules.TryAdd(name, module);

        var resolved = new List<ResolvedProbe>();
        var seen = new HashSet<string>();
        foreach (var probe in probes)
        {
            if (!seen.Add(probe.Normalization))
                throw new ArgumentException($"Probe point '{probe.Normalization}' is listed twice.", nameof(probes));
            if (!Enum.IsDefined(probe.Rectifier))
                throw new ArgumentException($"Probe point '{probe.Normalization}': unknown rectifier {probe.Rectifier}.", nameof(probes));
            var norm = Find(modules, probe.Normalization, probe) as BatchNorm2d
                ?? throw new ArgumentException($"Probe point '{probe.Normalization}': module '{probe.Normalization}' is a {modules[probe.Normalization].GetType().Name}, not a BatchNorm2d.", nameof(probes));
            nn.Module<Tensor, Tensor>? equilibrium = null;
            if (probe.Equilibrium is { } equilibriumName)
                equilibrium = Find(modules, equilibriumName, probe) as nn.Module<Tensor, Tensor>
                    ?? throw new ArgumentException($"Probe point '{probe.Normalization}': module '{equilibriumName}' is a {modules[equilibriumName].GetType().Name}, which does not map one tensor to one tensor.", nameof(probes));
            if (probe.Activation is { } activation && !modules.ContainsKey(activation))
                throw new ArgumentException($"Probe point '{probe.Normalization}': the network has no module named '{activation}'.", nameof(probes));
            resolved.Add(new ResolvedProbe(probe, norm, equilibrium));
        }
        return resolved;
    }

    private static nn.Module Find(Dictionary<string, nn.Module> modules, string name, ProbePoint probe) =>
        modules.TryGetValue(name, out var module)
            ? module
            : throw new ArgumentException($"Probe point '{probe.Normalization}': the network has no module named '{name}'.", "probes");

    private static IEnumerable<(string Name, nn.Module Module)> Steps(nn.Module module, string prefix)
    {
        foreach (var (name, child) in module.named_children())
        {
            string path = prefix + name;
            if (IsSingleStep(child))
                yield return (path, child);
            else
                foreach (var step in Steps(child, path + "."))
                    yield return step;
        }
    }

    /// <summary>A CeDsl layer (CE holds its BD and AII branches as submodules) or a module without children.</summary>
    private static bool IsSingleStep(nn.Module module) =>
        module.GetType().Assembly == typeof(ChannelEquilibrium).Assembly || !module.named_children().Any();

    private static bool IsEquilibrium(nn.Module module) =>
        module is ChannelEquilibrium or BatchDecorrelation or AdaptiveInstanceInverse;
}

/// <summary>A probe point with its modules.</summary>
internal sealed record ResolvedProbe(ProbePoint Point, BatchNorm2d Normalization, nn.Module<Tensor, Tensor>? Equilibrium)
{
    public long Channels => Normalization.num_features;

    public nn.Module<Tensor, Tensor> PreActivation => Equilibrium ?? Normalization;
}
