using CeDsl.Data;
using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Analysis;

/// <summary>Where the channels of a probe point are zeroed.</summary>
public enum AblationSite
{
    /// <summary>The normalization layer's output, before any equilibrium module (the paper: "we randomly drop some channels in the first normalization layers").</summary>
    NormalizationOutput,

    /// <summary>The input of the rectifier: the equilibrium module's output where there is one, else the normalization's.</summary>
    PreActivation,
}

/// <summary>How <see cref="ChannelAblation.Run"/> ablates.</summary>
public sealed record ChannelAblationOptions
{
    /// <summary>The ablation ratios, each in [0, 1]: the fraction of each target layer's channels zeroed.</summary>
    public IReadOnlyList<double> Ratios { get; init; } = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

    /// <summary>Independent random orders of the channels; each ratio is evaluated once per order.</summary>
    public int Repeats { get; init; } = 5;

    /// <summary>The seed of the random channel orders.</summary>
    public ulong Seed { get; init; }

    /// <summary>Where the channels are zeroed.</summary>
    public AblationSite Site { get; init; } = AblationSite.NormalizationOutput;

    internal void Validate()
    {
        if (Ratios is null || Ratios.Count == 0)
            throw new ArgumentException("At least one ablation ratio is needed.");
        foreach (double ratio in Ratios)
            if (!(ratio >= 0 && ratio <= 1))
                throw new ArgumentException($"Ablation ratios must lie in [0, 1], got {ratio}.");
        if (Repeats < 1)
            throw new ArgumentException($"Repeats must be at least 1, got {Repeats}.");
        if (!Enum.IsDefined(Site))
            throw new ArgumentException($"Unknown ablation site {Site}.");
    }
}

/// <summary>The accuracies at one ablation ratio, one per repeat.</summary>
/// <param name="Ratio">The fraction of each target layer's channels zeroed.</param>
/// <param name="AblatedChannels">Channels zeroed over all target layers (each layer: its channel count times the ratio, rounded to nearest, halves up).</param>
/// <param name="Accuracies">Top-1 accuracy in [0, 1] for each repeat, in repeat order.</param>
public sealed record AblationPoint(double Ratio, int AblatedChannels, IReadOnlyList<double> Accuracies)
{
    /// <summary>The mean accuracy.</summary>
    public double Mean => Accuracies.Average();

    /// <summary>The sample standard deviation of the accuracies (divisor n - 1; 0 for one repeat).</summary>
    public double StandardDeviation
    {
        get
        {
            if (Accuracies.Count < 2)
                return 0;
            double mean = Mean;
            return Math.Sqrt(Accuracies.Sum(a => (a - mean) * (a - mean)) / (Accuracies.Count - 1));
        }
    }
}

/// <summary>A cumulative random channel ablation curve (the CE paper's Fig. 3a/b, after Morcos et al. 2018).</summary>
/// <param name="Model">A label for the network (e.g. "BN" or "CE"); by default its module name.</param>
/// <param name="Targets">The normalization layers whose channels were ablated.</param>
/// <param name="TotalChannels">Their channels in all.</param>
/// <param name="Site">Where the channels were zeroed.</param>
/// <param name="Seed">The seed of the channel orders.</param>
/// <param name="Images">Images each accuracy was measured on.</param>
/// <param name="Points">One point per ratio, in the order the ratios were given.</param>
public sealed record AblationCurve(string Model, IReadOnlyList<string> Targets, int TotalChannels, AblationSite Site, ulong Seed, int Images,
    IReadOnlyList<AblationPoint> Points);

/// <summary>
/// Cumulative random channel ablation: channels of chosen layers are clamped to zero in a random
/// order, at increasing ratios, and the accuracy is measured at each. "Cumulative": within one
/// repeat every layer has one random channel order, and ratio r zeroes its first round(r * C)
/// channels, so a larger ratio zeroes a superset of the channels of a smaller one.
/// The network's parameters are never modified: channels are zeroed by forward hooks that are
/// removed afterwards (also on failure or cancellation).
/// </summary>
public static class ChannelAblation
{
    private const ulong ChannelOrderStream = 0xAB1A7E;

    /// <summary>
    /// Measures the ablation curve of <paramref name="model"/> on epoch 0 of <paramref name="data"/>
    /// (use an unshuffled, unaugmented loader), zeroing channels at the normalization layers of
    /// <paramref name="targets"/>. The paper ablates "the first normalization layers"; which layers
    /// those are is the caller's choice (e.g. the first k probe points of <see cref="ProbePoints.Discover"/>).
    /// </summary>
    /// <param name="model">A classifier.</param>
    /// <param name="targets">The layers to ablate.</param>
    /// <param name="data">The evaluation data.</param>
    /// <param name="options">Ratios, repeats, seed and site.</param>
    /// <param name="progress">Receives each finished (ratio index, repeat, accuracy).</param>
    /// <param name="cancellation">Stops between batches.</param>
    /// <exception cref="ArgumentException">Bad options or probe points.</exception>
    /// <exception cref="InvalidOperationException">A target module does not run exactly once per forward pass, or has an output of the wrong shape.</exception>
    public static AblationCurve Run(nn.Module<Tensor, Tensor> model, IReadOnlyList<ProbePoint> targets, BatchLoader data,
        ChannelAblationOptions? options = null, IProgress<(int RatioIndex, int Repeat, double Accuracy)>? progress = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        options ??= new ChannelAblationOptions();
        options.Validate();
        var resolved = ProbePoints.Resolve(model, targets);
        if (resolved.Count == 0)
            throw new ArgumentException("No layers to ablate.", nameof(targets));

        // Equal selections give equal accuracies: evaluate each once (ratio 0 is the plain network).
        var accuracyBySelection = new Dictionary<string, double>();
        int images = 0;
        var points = new List<AblationPoint>();
        for (int ratioIndex = 0; ratioIndex < options.Ratios.Count; ratioIndex++)
        {
            double ratio = options.Ratios[ratioIndex];
            var accuracies = new double[options.Repeats];
            for (int repeat = 0; repeat < options.Repeats; repeat++)
            {
                var selection = resolved.Select((probe, index) =>
                    RandomChannels((int)probe.Channels, ratio, options.Seed, repeat, index)).ToArray();
                string key = string.Join('|', selection.Select(channels => string.Join(',', channels.Order())));
                if (!accuracyBySelection.TryGetValue(key, out double accuracy))
                {
                    using (var zeroed = Zero(model, resolved, selection, options.Site))
                    {
                        var evaluation = Evaluator.Evaluate(model, data, cancellation);
                        accuracy = evaluation.Accuracy;
                        images = evaluation.Images;
                        zeroed.ExpectCalls(data.BatchesPerEpoch, $"{data.BatchesPerEpoch} batches");
                    }
                    accuracyBySelection[key] = accuracy;
                }
                accuracies[repeat] = accuracy;
                progress?.Report((ratioIndex, repeat, accuracy));
            }
            int ablated = resolved.Sum(probe => Count((int)probe.Channels, ratio));
            points.Add(new AblationPoint(ratio, ablated, accuracies));
        }

        return new AblationCurve(model.GetName(), [.. resolved.Select(p => p.Point.Normalization)], resolved.Sum(p => (int)p.Channels),
            options.Site, options.Seed, images, points);
    }

    /// <summary>
    /// The channels that ratio <paramref name="ratio"/> zeroes in target layer <paramref name="target"/>
    /// (its index in the target list) in repeat <paramref name="repeat"/>: the first round(ratio * channels)
    /// entries of a random order of 0..channels-1 that depends only on (seed, repeat, target).
    /// </summary>
    public static IReadOnlyList<int> RandomChannels(int channels, double ratio, ulong seed, int repeat, int target)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        if (!(ratio >= 0 && ratio <= 1))
            throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "The ratio must lie in [0, 1].");
        ArgumentOutOfRangeException.ThrowIfNegative(repeat);
        ArgumentOutOfRangeException.ThrowIfNegative(target);
        var order = new DeterministicRandom(seed, ChannelOrderStream, (ulong)repeat, (ulong)target).Permutation(channels);
        return order[..Count(channels, ratio)];
    }

    /// <summary>
    /// Zeroes the given channels of the target layers in every forward pass until disposed; the
    /// network is exactly as before once the result is disposed.
    /// </summary>
    /// <param name="model">The network.</param>
    /// <param name="targets">The layers.</param>
    /// <param name="channels">For each target, the channel indices to zero.</param>
    /// <param name="site">Where to zero them.</param>
    public static IDisposable ZeroChannels(nn.Module<Tensor, Tensor> model, IReadOnlyList<ProbePoint> targets,
        IReadOnlyList<IReadOnlyList<int>> channels, AblationSite site = AblationSite.NormalizationOutput)
    {
        ArgumentNullException.ThrowIfNull(channels);
        if (!Enum.IsDefined(site))
            throw new ArgumentException($"Unknown ablation site {site}.", nameof(site));
        var resolved = ProbePoints.Resolve(model, targets);
        if (channels.Count != resolved.Count)
            throw new ArgumentException($"{resolved.Count} targets but {channels.Count} channel lists.", nameof(channels));
        for (int i = 0; i < resolved.Count; i++)
            foreach (int channel in channels[i])
                if (channel < 0 || channel >= resolved[i].Channels)
                    throw new ArgumentException($"Probe point '{resolved[i].Point.Normalization}': channel {channel} is outside 0..{resolved[i].Channels - 1}.", nameof(channels));
        return Zero(model, resolved, channels, site);
    }

    private static OutputHooks Zero(nn.Module<Tensor, Tensor> model, IReadOnlyList<ResolvedProbe> targets,
        IReadOnlyList<IReadOnlyList<int>> channels, AblationSite site)
    {
        var hooks = new OutputHooks();
        try
        {
            for (int i = 0; i < targets.Count; i++)
            {
                if (channels[i].Count == 0)
                    continue;
                var probe = targets[i];
                var (name, module) = site == AblationSite.NormalizationOutput
                    ? (probe.Point.Normalization, (nn.Module<Tensor, Tensor>)probe.Normalization)
                    : (probe.Point.PreActivation, probe.PreActivation);
                long[] indices = [.. channels[i].Select(c => (long)c)];
                hooks.Add(name, module, output =>
                {
                    if (output.dim() < 2 || output.shape[1] != probe.Channels)
                        throw new InvalidOperationException($"Probe point '{probe.Point.Normalization}': module '{name}' returned shape [{string.Join(", ", output.shape)}], expected [N, {probe.Channels}, ...].");
                    using var index = torch.tensor(indices, device: output.device);
                    return output.index_fill(1, index, 0);
                });
            }
            return hooks;
        }
        catch
        {
            hooks.Dispose();
            throw;
        }
    }

    private static int Count(int channels, double ratio) => (int)Math.Round(ratio * channels, MidpointRounding.AwayFromZero);
}
