namespace CeDsl.Analysis;

/// <summary>Thresholds of the inhibited-channel statistics.</summary>
public sealed record ChannelStatisticsOptions
{
    /// <summary>
    /// A channel's gamma counts as zero when |gamma| is below this: the CE paper's Fig. 3d measures
    /// "the percentage of gamma whose values are less than 1e-3". The magnitude is compared, since a
    /// channel with a large negative gamma carries as much signal as one with a large positive gamma.
    /// </summary>
    public double ZeroGammaThreshold { get; init; } = 1e-3;

    /// <summary>
    /// A channel's gamma counts as small below this: the CE slides' Table 9 ("ratios of gamma_c &lt; 0.1").
    /// With beta &lt;= 0 (the slides' Table 4) it is the inhibited-channel condition of the slides' Remark 1
    /// at this threshold, not a criterion of the paper.
    /// </summary>
    public double GammaThreshold { get; init; } = 0.1;

    /// <summary>A post-rectifier value counts as sparse below this (the CE paper's sparsity ratio, Fig. 1: values &lt; 1e-3).</summary>
    public double ActivationThreshold { get; init; } = 1e-3;

    internal void Validate()
    {
        if (!double.IsFinite(ZeroGammaThreshold))
            throw new ArgumentException($"ZeroGammaThreshold must be finite, got {ZeroGammaThreshold}.");
        if (!double.IsFinite(GammaThreshold))
            throw new ArgumentException($"GammaThreshold must be finite, got {GammaThreshold}.");
        if (!double.IsFinite(ActivationThreshold))
            throw new ArgumentException($"ActivationThreshold must be finite, got {ActivationThreshold}.");
    }
}

/// <summary>
/// The inhibited-channel statistics of one probe point. Counts are exact; ratios are derived from them.
/// </summary>
/// <param name="Normalization">The BatchNorm2d.</param>
/// <param name="Equilibrium">The module between it and the rectifier, or null.</param>
/// <param name="Activation">The rectifier module, or null.</param>
/// <param name="Rectifier">The rectifier applied before measuring sparsity.</param>
/// <param name="Channels">C.</param>
/// <param name="GammaBelow">Channels with gamma &lt; the threshold (signed, as the paper's table states it).</param>
/// <param name="AbsGammaBelow">Channels with |gamma| &lt; the threshold (Remark 1's "gamma sufficiently approaches 0").</param>
/// <param name="BetaNonPositive">Channels with beta &lt;= 0.</param>
/// <param name="Inhibited">Channels with |gamma| &lt; the threshold and beta &lt;= 0: Remark 1's condition for an inhibited channel.</param>
/// <param name="ActivationValues">Post-rectifier values seen, or null where no data was given or no rectifier follows.</param>
/// <param name="SparseValues">Of those, the values below the activation threshold.</param>
/// <param name="DeadChannels">Channels whose every post-rectifier value was below the activation threshold.</param>
/// <param name="ZeroGamma">Channels with |gamma| &lt; the zero-gamma threshold (the CE paper's Fig. 3d criterion).</param>
public sealed record LayerChannelStatistics(
    string Normalization, string? Equilibrium, string? Activation, Rectifier Rectifier, int Channels,
    int GammaBelow, int AbsGammaBelow, int BetaNonPositive, int Inhibited,
    long? ActivationValues, long? SparseValues, int? DeadChannels, int ZeroGamma)
{
    /// <summary>ZeroGamma / Channels.</summary>
    public double ZeroGammaRatio => (double)ZeroGamma / Channels;

    /// <summary>GammaBelow / Channels.</summary>
    public double GammaBelowRatio => (double)GammaBelow / Channels;

    /// <summary>AbsGammaBelow / Channels.</summary>
    public double AbsGammaBelowRatio => (double)AbsGammaBelow / Channels;

    /// <summary>BetaNonPositive / Channels.</summary>
    public double BetaNonPositiveRatio => (double)BetaNonPositive / Channels;

    /// <summary>Inhibited / Channels.</summary>
    public double InhibitedRatio => (double)Inhibited / Channels;

    /// <summary>The sparsity ratio: SparseValues / ActivationValues, or null if not measured.</summary>
    public double? SparsityRatio => ActivationValues is > 0 ? (double)SparseValues!.Value / ActivationValues.Value : null;

    /// <summary>DeadChannels / Channels, or null if not measured.</summary>
    public double? DeadChannelRatio => DeadChannels is { } dead ? (double)dead / Channels : null;
}

/// <summary>The inhibited-channel statistics of a network, per layer and overall.</summary>
/// <param name="Model">A label for the network (e.g. "BN" or "CE"); by default its module name.</param>
/// <param name="Options">The thresholds used.</param>
/// <param name="Images">Images whose activations were measured (0 for parameters only).</param>
/// <param name="Layers">One entry per probe point, in the order given.</param>
public sealed record ChannelStatisticsReport(string Model, ChannelStatisticsOptions Options, long Images, IReadOnlyList<LayerChannelStatistics> Layers)
{
    /// <summary>Channels of all layers.</summary>
    public int Channels => Layers.Sum(l => l.Channels);

    /// <summary>
    /// Fraction of all channels with |gamma| &lt; the zero-gamma threshold: the CE paper's Fig. 3d
    /// criterion, which concerns the normalization layers followed by a rectifier (see <see cref="BeforeRectifier"/>).
    /// </summary>
    public double ZeroGammaRatio => Pooled(l => l.ZeroGamma);

    /// <summary>Fraction of all channels with gamma &lt; the threshold.</summary>
    public double GammaBelowRatio => Pooled(l => l.GammaBelow);

    /// <summary>Fraction of all channels with |gamma| &lt; the threshold.</summary>
    public double AbsGammaBelowRatio => Pooled(l => l.AbsGammaBelow);

    /// <summary>Fraction of all channels with beta &lt;= 0.</summary>
    public double BetaNonPositiveRatio => Pooled(l => l.BetaNonPositive);

    /// <summary>Fraction of all channels meeting Remark 1's condition.</summary>
    public double InhibitedRatio => Pooled(l => l.Inhibited);

    /// <summary>
    /// The paper's sparsity ratio of the network: "the average percentage of values less than 1e-3"
    /// over the measured feature maps, i.e. the mean of the per-layer ratios; null if none was measured.
    /// </summary>
    public double? SparsityRatio => Measured.Any() ? Measured.Average(l => l.SparsityRatio!.Value) : null;

    /// <summary>Sparse values over all values of all measured layers (weights large maps more than <see cref="SparsityRatio"/>).</summary>
    public double? PooledSparsityRatio => Measured.Any() ? (double)Measured.Sum(l => l.SparseValues!.Value) / Measured.Sum(l => l.ActivationValues!.Value) : null;

    /// <summary>Fraction of the measured layers' channels that were dead on every image.</summary>
    public double? DeadChannelRatio => Measured.Any() ? (double)Measured.Sum(l => l.DeadChannels!.Value) / Measured.Sum(l => l.Channels) : null;

    /// <summary>
    /// The same statistics over the layers followed by a rectifier only: the "Norm + Rectifier" blocks that
    /// the paper's criteria and the slides' Remark 1 are about (a normalization whose output is added to a
    /// shortcut before the rectifier, or a projection shortcut's, cannot inhibit a channel by itself).
    /// </summary>
    public ChannelStatisticsReport BeforeRectifier() => this with { Layers = [.. Layers.Where(l => l.Rectifier != Rectifier.None)] };

    private IEnumerable<LayerChannelStatistics> Measured => Layers.Where(l => l.SparsityRatio is not null);

    private double Pooled(Func<LayerChannelStatistics, int> count) => Channels == 0 ? 0 : (double)Layers.Sum(count) / Channels;
}
