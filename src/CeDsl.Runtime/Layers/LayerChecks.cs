using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>Argument and input validation shared by the layers: every message names the module and the problem.</summary>
internal static class LayerChecks
{
    internal static void Channels(long channels, string module)
    {
        if (channels <= 0)
            throw new ArgumentOutOfRangeException(nameof(channels), channels, $"{module}: the channel count must be positive.");
    }

    /// <summary>The gate's hidden width C / r must be at least 1.</summary>
    internal static void Reduction(long channels, int reduction, string module)
    {
        if (reduction <= 0 || channels / reduction < 1)
            throw new ArgumentOutOfRangeException(nameof(reduction), reduction,
                $"{module}: the reduction must be positive and at most the channel count ({channels}), so that C / r >= 1.");
    }

    internal static void Momentum(double momentum, string module)
    {
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, $"{module}: the momentum must be in [0, 1].");
    }

    /// <summary>Group size, Newton iterations and eps of the BD branch.</summary>
    internal static void Decorrelation(int groupSize, int iterations, double eps, string module)
    {
        if (groupSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, $"{module}: the group size must be positive.");
        if (iterations <= 0)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, $"{module}: the number of Newton iterations must be positive.");
        if (!(eps > 0) || double.IsInfinity(eps))
            throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{module}: eps must be positive and finite.");
    }

    /// <summary>
    /// Checks rank, channel count, element type and the spatial extent the module needs.
    /// <paramref name="needsInstanceVariance"/>: the module takes the unbiased variance over H*W,
    /// undefined for H*W = 1. <paramref name="pooled"/>: the module max-pools 2x2, which needs H, W &gt;= 2.
    /// </summary>
    internal static void Input(Tensor input, string module, long channels, ScalarType dtype,
        bool needsInstanceVariance = false, bool pooled = false)
    {
        if (input.dim() != 4)
            throw new ArgumentException(
                $"{module}: expected a 4-D input (N, C, H, W), got a {input.dim()}-D tensor of shape {Describe(input)}.",
                nameof(input));
        if (input.shape[1] != channels)
            throw new ArgumentException(
                $"{module}: channel count mismatch: the module was built for {channels} channels, the input {Describe(input)} has {input.shape[1]}.",
                nameof(input));
        if (input.numel() == 0)
            throw new ArgumentException($"{module}: the input {Describe(input)} is empty.", nameof(input));
        if (input.dtype != dtype)
            throw new ArgumentException(
                $"{module}: element type mismatch: the module holds {dtype} state, the input is {input.dtype}.",
                nameof(input));
        if (needsInstanceVariance && input.shape[2] * input.shape[3] == 1)
            throw new ArgumentException(
                $"{module}: H*W = 1 (input {Describe(input)}): the per-instance variance over H*W positions " +
                "(divisor H*W - 1) is undefined; place this block where the feature map has at least 2 positions.",
                nameof(input));
        if (pooled && (input.shape[2] < 2 || input.shape[3] < 2))
            throw new ArgumentException(
                $"{module}: the 2x2 max-pooling before the covariance needs H >= 2 and W >= 2, the input is {Describe(input)}.",
                nameof(input));
    }

    /// <summary>
    /// Throws when a statistic computed from the input is not finite. Any NaN or infinity in the
    /// input propagates into the reductions the layers compute anyway, so checking the small
    /// statistic detects it without another pass over the activation.
    /// </summary>
    internal static void RequireFinite(Tensor statistic, string module, string statisticName)
    {
        if (!statistic.isfinite().all().item<bool>())
            throw NotFinite(module, statisticName);
    }

    /// <summary>The error of <see cref="RequireFinite"/>, for callers that found the non-finite statistic themselves.</summary>
    internal static ArgumentException NotFinite(string module, string statisticName) =>
        new($"{module}: the input contains NaN or infinite values ({statisticName} is not finite).", "input");

    private static string Describe(Tensor input) => "[" + string.Join(", ", input.shape) + "]";
}
