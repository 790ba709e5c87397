using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Selective;

/// <summary>
/// Expected channel damage (Jeong &amp; Shin, ICML 2019) as a channel-importance analysis of any
/// <c>BN -&gt; ReLU -&gt; conv</c> chain. The BN output of input channel i is modelled as
/// N(b_i, g_i^2), so the expected ReLU output is
/// <c>E[i] = |g_i| phi(b_i / (|g_i| + 1e-8)) + b_i Phi(b_i / (|g_i| + 1e-8))</c>, and the expected
/// channel damage matrix (ECDM, O x I) is <c>ECDM[o, i] = (sum over kernel positions of W[o, i]) * E[i]</c>:
/// the expected, spatially averaged change of output o when input channel i is removed.
/// <c>SelectiveConv2d</c> uses these same functions.
/// </summary>
public static class ChannelImportance
{
    /// <summary>Added to |g| before dividing, and to row sums before normalising, as in the reference code.</summary>
    public const double Epsilon = 1e-8;

    /// <summary>
    /// E[ReLU(N(b, g^2))] for every channel, from the BN weight g (its absolute value is used) and bias b.
    /// </summary>
    public static Tensor ExpectedActivation(Tensor bnWeight, Tensor bnBias)
    {
        if (bnWeight.dim() != 1 || !bnWeight.shape.SequenceEqual(bnBias.shape))
            throw new ArgumentException(
                $"ChannelImportance: BN weight and bias must be vectors of the same length (got [{string.Join(", ", bnWeight.shape)}] and [{string.Join(", ", bnBias.shape)}]).");
        using var scope = NewDisposeScope();
        var scale = bnWeight.abs();
        var ratio = bnBias / (scale + Epsilon);
        var pdf = ratio.square().mul(-0.5).exp().mul(1.0 / Math.Sqrt(2 * Math.PI));
        var cdf = ratio.mul(1.0 / Math.Sqrt(2)).erf().add(1).mul(0.5);
        return (scale * pdf + bnBias * cdf).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The O x I expected channel damage matrix of <c>BN(weight, bias) -&gt; ReLU -&gt; (gate) -&gt; conv(convWeight)</c>.
    /// <paramref name="convWeight"/> is O x (I / groups) x kh x kw; a grouped convolution gives zeros
    /// where an input channel does not reach an output. <paramref name="gate"/> (I values, usually 0/1)
    /// multiplies the expected activations when given.
    /// </summary>
    public static Tensor Ecdm(Tensor bnWeight, Tensor bnBias, Tensor convWeight, long groups = 1, Tensor? gate = null)
    {
        if (convWeight.dim() != 4)
            throw new ArgumentException($"ChannelImportance: the conv weight must be 4-D (O x I/groups x kh x kw), got {convWeight.dim()}-D.");
        long inChannels = bnWeight.shape[0];
        long outChannels = convWeight.shape[0];
        if (groups < 1 || outChannels % groups != 0 || convWeight.shape[1] * groups != inChannels)
            throw new ArgumentException(
                $"ChannelImportance: BN has {inChannels} channels but the conv weight [{string.Join(", ", convWeight.shape)}] with groups = {groups} reads {convWeight.shape[1] * groups}.");
        if (gate is not null && !gate.shape.SequenceEqual(new[] { inChannels }))
            throw new ArgumentException($"ChannelImportance: the gate must have {inChannels} values, got [{string.Join(", ", gate.shape)}].");

        using var scope = NewDisposeScope();
        var kernelSums = convWeight.sum(new long[] { 2, 3 });
        if (groups > 1)
            kernelSums = block_diag(kernelSums.chunk(groups, 0));
        var expected = ExpectedActivation(bnWeight, bnBias);
        if (gate is not null)
            expected = expected * gate;
        return (kernelSums * expected.unsqueeze(0)).MoveToOuterDisposeScope();
    }

    /// <summary>The ECDM of a BatchNorm2d followed (through a ReLU) by a Conv2d.</summary>
    public static Tensor Ecdm(BatchNorm2d norm, Conv2d conv, Tensor? gate = null)
    {
        if (norm.bias is null || norm.weight is null)
            throw new ArgumentException("ChannelImportance: the BatchNorm2d must be affine (the ECDM needs its weight and bias).");
        if (norm.weight.shape[0] != conv.in_channels)
            throw new ArgumentException(
                $"ChannelImportance: BatchNorm2d has {norm.weight.shape[0]} channels but the Conv2d reads {conv.in_channels}.");
        return Ecdm(norm.weight, norm.bias, conv.weight!, conv.groups, gate);
    }

    /// <summary>Absolute value of the ECDM with each row divided by (its row sum + 1e-8).</summary>
    public static Tensor Normalize(Tensor ecdm)
    {
        using var scope = NewDisposeScope();
        var magnitude = ecdm.abs();
        return (magnitude / (magnitude.sum(1, keepdim: true) + Epsilon)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Importance of each input channel: the L2 norm over outputs of its normalised-ECDM column
    /// (the score SelectConv's realloc ranks channels by).
    /// </summary>
    public static Tensor ColumnImportance(Tensor normalizedEcdm)
    {
        using var scope = NewDisposeScope();
        return normalizedEcdm.square().sum(dim: 0).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Channel importances of a BN -&gt; ReLU -&gt; conv chain and how evenly they are spread.
    /// </summary>
    public static ChannelImportanceReport Analyze(BatchNorm2d norm, Conv2d conv, Tensor? gate = null)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        double[] values = ToDoubles(ColumnImportance(Normalize(Ecdm(norm, conv, gate))));
        return new ChannelImportanceReport(values, Gini(values), NormalizedEntropy(values));
    }

    /// <summary>
    /// Gini coefficient <c>sum_i sum_j |x_i - x_j| / (2 n^2 mean)</c> of non-negative values:
    /// 0 when all are equal, (n - 1) / n when a single value carries everything. NaN when all are 0.
    /// </summary>
    public static double Gini(IReadOnlyList<double> values)
    {
        RequireNonNegative(values, nameof(Gini));
        int n = values.Count;
        double[] sorted = values.Order().ToArray();
        double total = sorted.Sum();
        if (total == 0) return double.NaN;
        double weighted = 0;
        for (int i = 0; i < n; i++)
            weighted += (2.0 * i - n + 1) * sorted[i];
        return weighted / (n * total);
    }

    /// <summary>
    /// Shannon entropy of the values normalised to sum 1, divided by ln n: 1 when all are equal,
    /// 0 when a single value carries everything (1 for n = 1). NaN when all are 0.
    /// </summary>
    public static double NormalizedEntropy(IReadOnlyList<double> values)
    {
        RequireNonNegative(values, nameof(NormalizedEntropy));
        int n = values.Count;
        double total = values.Sum();
        if (total == 0) return double.NaN;
        if (n == 1) return 1;
        double entropy = 0;
        foreach (double value in values)
        {
            if (value == 0) continue;
            double p = value / total;
            entropy -= p * Math.Log(p);
        }
        return entropy / Math.Log(n);
    }

    internal static double[] ToDoubles(Tensor values)
    {
        using var scope = NewDisposeScope();
        return values.detach().cpu().to_type(ScalarType.Float64).data<double>().ToArray();
    }

    private static void RequireNonNegative(IReadOnlyList<double> values, string statistic)
    {
        if (values.Count == 0)
            throw new ArgumentException($"ChannelImportance.{statistic}: no values.");
        if (values.Any(v => !(v >= 0) || double.IsInfinity(v)))
            throw new ArgumentException($"ChannelImportance.{statistic}: values must be finite and non-negative.");
    }
}

/// <summary>
/// Per-channel importance of a BN -&gt; ReLU -&gt; conv chain (<see cref="ChannelImportance.ColumnImportance"/>)
/// and two evenness statistics of it, both independent of the overall scale of the importances.
/// <see cref="Gini"/> is the headline figure: half the mean absolute difference between two channels'
/// importances relative to the mean importance, 0 when every channel matters equally and near 1 when
/// a few channels carry everything; it reads like the familiar inequality index and changes linearly
/// when importance moves between channels. <see cref="NormalizedEntropy"/> (1 = perfectly even) is
/// reported alongside for readers who prefer an information measure.
/// </summary>
public sealed record ChannelImportanceReport(IReadOnlyList<double> Importance, double Gini, double NormalizedEntropy);
