using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Python.Tests.LayerTwins;

/// <summary>Random but well-conditioned weights and inputs for the twin checks.</summary>
internal static class TwinState
{
    /// <summary>
    /// Non-trivial state: lambda = Sigmoid(0.8), LayerNorm affine away from (1, 0), BN affine and running
    /// statistics away from their initial values, shifts in [-1.5, 1.5], weights N(0, 1 / fan-in).
    /// </summary>
    public static void Randomize(nn.Module module, bool parametersOnly = false, Func<string, bool>? skip = null, long seed = 1234)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var tensors = module.named_parameters().Select(p => (p.name, (Tensor)p.parameter));
        if (!parametersOnly)
            tensors = tensors.Concat(module.named_buffers().Where(b => b.name.EndsWith("running_mean") || b.name.EndsWith("running_var")));
        foreach (var (name, tensor) in tensors.ToList())
        {
            if (skip?.Invoke(name) == true || tensor.dtype is not (ScalarType.Float32 or ScalarType.Float64))
                continue;
            var normal = randn(tensor.shape, ScalarType.Float64, generator: generator);
            var uniform = rand(tensor.shape, ScalarType.Float64, generator: generator);
            Tensor value = name switch
            {
                _ when name.EndsWith("x_weight") => full(tensor.shape, 0.8, ScalarType.Float64),
                _ when name.EndsWith("_bias") => (2 * uniform - 1) * 1.5,
                _ when name.EndsWith("norm.weight") => 0.5 + uniform,
                _ when name.EndsWith("norm.bias") => 0.5 * normal,
                _ when name.EndsWith("running_mean") => 0.2 * normal,
                _ when name.EndsWith("running_var") => 0.5 + uniform,
                _ when name.EndsWith("fc.1.weight") && tensor.dim() == 1 => 1 + 0.3 * normal,
                _ when tensor.dim() == 1 => 0.3 * normal,
                _ => normal / Math.Sqrt(tensor.numel() / tensor.shape[0]),
            };
            tensor.copy_(value);
        }
    }

    /// <summary>Looks like a normalization layer's output: correlated channels, a scale and shift per channel.</summary>
    public static Tensor NormalizedLikeInput(long[] shape, ScalarType type, long seed)
    {
        var generator = new Generator((ulong)seed);
        long n = shape[0], c = shape[1];
        using var scope = NewDisposeScope();
        var z = randn([n, c, shape[2] * shape[3]], ScalarType.Float64, generator: generator);
        var mixing = eye(c, dtype: ScalarType.Float64) + 0.4 * randn([c, c], ScalarType.Float64, generator: generator) / Math.Sqrt(c);
        var gamma = 0.5 + rand([c, 1], ScalarType.Float64, generator: generator);
        var beta = 0.5 * randn([c, 1], ScalarType.Float64, generator: generator);
        return (gamma * mixing.matmul(z) + beta).view(shape).to(type).MoveToOuterDisposeScope();
    }
}
