using CeDsl.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Analysis;

/// <summary>
/// Inhibited-channel statistics: per probe point, the CE paper's two criteria (Fig. 3d: channels with
/// |gamma| &lt; 1e-3; Fig. 1: the sparsity ratio, the fraction of post-rectifier values below 1e-3 over a
/// data set), and the CE slides' ratios of channels with gamma &lt; 0.1 (Table 9), with beta &lt;= 0
/// (Table 4), and with both (Remark 1's inhibited channel at that threshold).
/// </summary>
public static class ChannelStatistics
{
    /// <summary>The gamma and beta statistics alone (no data; sparsity fields are null).</summary>
    /// <exception cref="ArgumentException">A probe point does not fit the network, or a BN has no affine parameters.</exception>
    public static ChannelStatisticsReport Parameters(nn.Module model, IReadOnlyList<ProbePoint> probes, ChannelStatisticsOptions? options = null)
    {
        options ??= new ChannelStatisticsOptions();
        options.Validate();
        var resolved = ProbePoints.Resolve(model, probes);
        return new ChannelStatisticsReport(model.GetName(), options, 0,
            [.. resolved.Select(probe => LayerStatistics(probe, options, activations: null))]);
    }

    /// <summary>
    /// The gamma and beta statistics, and the sparsity of every probe point with a rectifier over all
    /// batches of epoch 0 of <paramref name="data"/> (use an unshuffled, unaugmented loader).
    /// </summary>
    /// <inheritdoc cref="Measure(nn.Module{Tensor, Tensor}, IReadOnlyList{ProbePoint}, IEnumerable{Tensor}, ChannelStatisticsOptions?, CancellationToken)"/>
    public static ChannelStatisticsReport Measure(nn.Module<Tensor, Tensor> model, IReadOnlyList<ProbePoint> probes, BatchLoader data,
        ChannelStatisticsOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Measure(model, probes, Images(data), options, cancellation);
    }

    /// <summary>
    /// The gamma and beta statistics, and the sparsity of every probe point with a rectifier over
    /// <paramref name="inputs"/> (batches [N, C, H, W]), run in evaluation mode without gradients.
    /// The model's mode is restored and every hook removed afterwards, also on failure.
    /// </summary>
    /// <exception cref="ArgumentException">A probe point does not fit the network, or a BN has no affine parameters.</exception>
    /// <exception cref="InvalidOperationException">A probed module does not run exactly once per forward pass, or its output has the wrong shape.</exception>
    public static ChannelStatisticsReport Measure(nn.Module<Tensor, Tensor> model, IReadOnlyList<ProbePoint> probes, IEnumerable<Tensor> inputs,
        ChannelStatisticsOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        options ??= new ChannelStatisticsOptions();
        options.Validate();
        var resolved = ProbePoints.Resolve(model, probes);
        foreach (var probe in resolved)
            AffineParameters(probe);

        var activations = resolved.ToDictionary(p => p, p => p.Point.Rectifier == Rectifier.None ? null : new ActivationCounts(p.Channels));
        bool wasTraining = model.training;
        long images = 0;
        using (var hooks = new OutputHooks())
        {
            try
            {
                model.eval();
                foreach (var probe in resolved)
                    if (activations[probe] is { } counts)
                        hooks.Add(probe.Point.PreActivation, probe.PreActivation, output =>
                        {
                            counts.Add(probe, output, options.ActivationThreshold);
                            return null;
                        });

                using var noGrad = torch.no_grad();
                foreach (var input in inputs)
                {
                    cancellation.ThrowIfCancellationRequested();
                    using (var scope = torch.NewDisposeScope())
                        model.call(input);
                    hooks.ExpectCalls(1, "one forward pass");
                    images += input.shape[0];
                }
            }
            finally
            {
                model.train(wasTraining);
            }
        }

        return new ChannelStatisticsReport(model.GetName(), options, images,
            [.. resolved.Select(probe => LayerStatistics(probe, options, activations[probe]))]);
    }

    private static IEnumerable<Tensor> Images(BatchLoader data)
    {
        for (int index = 0; index < data.BatchesPerEpoch; index++)
        {
            using var batch = data.GetBatch(0, index);
            yield return batch.Images;
        }
    }

    private static LayerChannelStatistics LayerStatistics(ResolvedProbe probe, ChannelStatisticsOptions options, ActivationCounts? activations)
    {
        var (gamma, beta) = AffineParameters(probe);
        double threshold = options.GammaThreshold;
        int zeroGamma = 0, gammaBelow = 0, absGammaBelow = 0, betaNonPositive = 0, inhibited = 0;
        for (int c = 0; c < gamma.Length; c++)
        {
            if (Math.Abs(gamma[c]) < options.ZeroGammaThreshold) zeroGamma++;
            bool small = Math.Abs(gamma[c]) < threshold;
            if (gamma[c] < threshold) gammaBelow++;
            if (small) absGammaBelow++;
            if (beta[c] <= 0) betaNonPositive++;
            if (small && beta[c] <= 0) inhibited++;
        }
        var point = probe.Point;
        bool measured = activations is { Values: > 0 };
        return new LayerChannelStatistics(point.Normalization, point.Equilibrium, point.Activation, point.Rectifier, gamma.Length,
            gammaBelow, absGammaBelow, betaNonPositive, inhibited,
            measured ? activations!.Values : null, measured ? activations!.Sparse : null, measured ? activations!.DeadChannels(options.ActivationThreshold) : null,
            zeroGamma);
    }

    private static (double[] Gamma, double[] Beta) AffineParameters(ResolvedProbe probe)
    {
        var norm = probe.Normalization;
        if (!norm.affine || norm.bias is null)
            throw new ArgumentException($"Probe point '{probe.Point.Normalization}': the BatchNorm2d has no affine gamma and beta to examine.");
        using var scope = torch.NewDisposeScope();
        return (Values(norm.weight), Values(norm.bias));

        static double[] Values(Tensor t) => t.detach().to(ScalarType.Float64).cpu().data<double>().ToArray();
    }

    /// <summary>Running counts of one probe point's post-rectifier values.</summary>
    private sealed class ActivationCounts(long channels)
    {
        private readonly double[] _maxima = Enumerable.Repeat(double.NegativeInfinity, (int)channels).ToArray();

        public long Values { get; private set; }

        public long Sparse { get; private set; }

        public int DeadChannels(double threshold) => _maxima.Count(m => m < threshold);

        public void Add(ResolvedProbe probe, Tensor output, double threshold)
        {
            if (output.dim() != 4 || output.shape[1] != probe.Channels)
                throw new InvalidOperationException($"Probe point '{probe.Point.Normalization}': module '{probe.Point.PreActivation}' returned shape [{string.Join(", ", output.shape)}], expected [N, {probe.Channels}, H, W].");
            using var scope = torch.NewDisposeScope();
            var rectified = probe.Point.Rectifier switch
            {
                Rectifier.ReLU => output.detach().relu(),
                Rectifier.ReLU6 => output.detach().relu6(),
                _ => throw new InvalidOperationException($"Probe point '{probe.Point.Normalization}' has no rectifier."),
            };
            Sparse += rectified.lt(threshold).sum().item<long>();
            Values += rectified.numel();
            var maxima = rectified.amax([0, 2, 3]).to(ScalarType.Float64).cpu().data<double>().ToArray();
            for (int c = 0; c < maxima.Length; c++)
                _maxima[c] = Math.Max(_maxima[c], maxima[c]);
        }
    }
}
