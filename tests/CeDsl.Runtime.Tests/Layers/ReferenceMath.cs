using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>
/// Slow, loop-by-loop float64 implementations written straight from
/// docs/semantics/channel-equilibrium.md, independent of the layers' own helpers.
/// </summary>
internal static class ReferenceMath
{
    /// <summary>The (d, M) matrix of group g: column n*H*W + p holds sample n, position p (the reference's transpose-then-flatten order).</summary>
    public static Tensor GroupColumns(Tensor x, int group, int groupSize)
    {
        long n = x.shape[0], positions = x.shape[2] * x.shape[3];
        var columns = new List<Tensor>();
        for (long sample = 0; sample < n; sample++)
            columns.Add(x[sample].narrow(0, group * groupSize, groupSize).reshape(groupSize, positions));
        return cat(columns, 1).to(float64);
    }

    /// <summary>2x2 max pooling with stride 2 (floor), element by element.</summary>
    public static Tensor MaxPool2x2(Tensor x)
    {
        long n = x.shape[0], c = x.shape[1], h = x.shape[2] / 2, w = x.shape[3] / 2;
        var pooled = zeros(n, c, h, w, dtype: float64);
        var source = x.to(float64);
        for (long i = 0; i < h; i++)
            for (long j = 0; j < w; j++)
            {
                var window = source.narrow(2, 2 * i, 2).narrow(3, 2 * j, 2).reshape(n, c, 4);
                pooled[.., .., i, j] = window.amax(new long[] { 2 });
            }
        return pooled;
    }

    /// <summary>Group means (G, d, 1) and wm (G, d, d) of the BD branch in training.</summary>
    public static (Tensor mean, Tensor wm) Decorrelation(Tensor x, int groupSize, int iterations = 3, double eps = 1e-5, bool pool = false)
    {
        long m = x.shape[0] * x.shape[2] * x.shape[3];
        var source = pool ? MaxPool2x2(x) : x.to(float64);
        int groups = (int)(x.shape[1] / groupSize);
        var means = new List<Tensor>();
        var maps = new List<Tensor>();
        for (int g = 0; g < groups; g++)
        {
            var columns = GroupColumns(source, g, groupSize);
            var mean = columns.mean(new long[] { 1 }, keepdim: true);
            var centred = columns - mean;
            var identity = eye(groupSize, dtype: float64);
            var sigma = eps * identity + centred.matmul(centred.T) / m;
            var normalized = sigma / sigma.trace();
            var p = identity;
            for (int k = 0; k < iterations; k++)
                p = 1.5 * p - 0.5 * p.matmul(p).matmul(p).matmul(normalized);
            means.Add(mean);
            maps.Add(p);
        }
        return (stack(means), stack(maps));
    }

    /// <summary>out[n, group g] = map[g] @ x[n, group g], with map (G, d, d), or (N, G, d, d) per sample.</summary>
    public static Tensor ApplyPerGroup(Tensor map, Tensor x)
    {
        long n = x.shape[0], positions = x.shape[2] * x.shape[3];
        long groups = map.shape[^3], groupSize = map.shape[^1];
        var source = x.to(float64);
        var samples = new List<Tensor>();
        for (long sample = 0; sample < n; sample++)
        {
            var blocks = new List<Tensor>();
            for (long g = 0; g < groups; g++)
            {
                var block = source[sample].narrow(0, g * groupSize, groupSize).reshape(groupSize, positions);
                var matrix = map.dim() == 4 ? map[sample, g] : map[g];
                blocks.Add(matrix.to(float64).matmul(block));
            }
            samples.Add(cat(blocks, 0).reshape(x.shape[1], x.shape[2], x.shape[3]));
        }
        return stack(samples);
    }

    /// <summary>v(n, c): unbiased variance over the H*W positions, (N, C).</summary>
    public static Tensor InstanceVariance(Tensor x)
    {
        long n = x.shape[0], c = x.shape[1], positions = x.shape[2] * x.shape[3];
        var result = zeros(n, c, dtype: float64);
        var source = x.to(float64);
        for (long i = 0; i < n; i++)
            for (long j = 0; j < c; j++)
            {
                var values = source[i, j].reshape(positions);
                var centred = values - values.sum() / positions;
                result[i, j] = (centred * centred).sum() / (positions - 1);
            }
        return result;
    }

    /// <summary>y = Sigmoid(W3 ReLU(LayerNorm(W0 v))) from an AII state dict (keys without the "AR." prefix).</summary>
    public static Tensor Gate(Tensor variance, IReadOnlyDictionary<string, Tensor> state, double layerNormEps = 1e-5)
    {
        var hidden = variance.to(float64).matmul(state["fc.0.weight"].to(float64).T);
        var centred = hidden - hidden.mean(new long[] { 1 }, keepdim: true);
        var biasedVariance = (centred * centred).mean(new long[] { 1 }, keepdim: true);
        var normalized = centred / (biasedVariance + layerNormEps).sqrt() * state["fc.1.weight"].to(float64)
                         + state["fc.1.bias"].to(float64);
        var activated = normalized.clamp_min(0);
        return (activated.matmul(state["fc.3.weight"].to(float64).T)).sigmoid();
    }

    /// <summary>s = sqrt(mean over all N*C of v(n, c)).</summary>
    public static double Scale(Tensor x) => Math.Sqrt(InstanceVariance(x).mean().item<double>());

    /// <summary>Returns the entries of <paramref name="state"/> under <paramref name="prefix"/>, prefix removed.</summary>
    public static Dictionary<string, Tensor> Under(IReadOnlyDictionary<string, Tensor> state, string prefix) =>
        state.Where(entry => entry.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(entry => entry.Key[prefix.Length..], entry => entry.Value);
}
