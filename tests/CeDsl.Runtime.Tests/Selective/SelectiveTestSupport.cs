using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

/// <summary>
/// Independent reference arithmetic and state access for the selective-convolution tests. Every random
/// draw goes through an explicit generator: xunit runs test classes in parallel and torch's global seed
/// is shared.
/// </summary>
internal static class SelectiveTestSupport
{
    public static double NormalPdf(double x) => Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    public static double NormalCdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));

    /// <summary>Complementary error function, Chebyshev fit with fractional error below 1.2e-7 everywhere.</summary>
    private static double Erfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1 / (1 + 0.5 * z);
        double polynomial = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
            + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
            + t * (-0.82215223 + t * 0.17087277))))))));
        double result = t * Math.Exp(polynomial);
        return x >= 0 ? result : 2 - result;
    }

    /// <summary>E[ReLU(N(b, g^2))] written out with plain arithmetic.</summary>
    public static double ExpectedRelu(double g, double b)
    {
        double scale = Math.Abs(g);
        double ratio = b / (scale + 1e-8);
        return scale * NormalPdf(ratio) + b * NormalCdf(ratio);
    }

    /// <summary>ECDM[o, i] = (sum over the kernel of W[o, i]) * E[i] * gate[i], with plain loops.</summary>
    public static double[,] EcdmByLoops(double[] g, double[] b, double[] weight, int outputs, int inputs, int kernelArea, double[]? gate = null)
    {
        var ecdm = new double[outputs, inputs];
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < inputs; i++)
            {
                double kernelSum = 0;
                for (int k = 0; k < kernelArea; k++)
                    kernelSum += weight[(o * inputs + i) * kernelArea + k];
                ecdm[o, i] = kernelSum * ExpectedRelu(g[i], b[i]) * (gate?[i] ?? 1);
            }
        return ecdm;
    }

    public static double[,] NormalizeByLoops(double[,] ecdm)
    {
        int outputs = ecdm.GetLength(0), inputs = ecdm.GetLength(1);
        var normalized = new double[outputs, inputs];
        for (int o = 0; o < outputs; o++)
        {
            double rowSum = 0;
            for (int i = 0; i < inputs; i++) rowSum += Math.Abs(ecdm[o, i]);
            for (int i = 0; i < inputs; i++) normalized[o, i] = Math.Abs(ecdm[o, i]) / (rowSum + 1e-8);
        }
        return normalized;
    }

    public static double[] Values(Tensor tensor)
    {
        using var converted = tensor.detach().cpu().to_type(ScalarType.Float64);
        return converted.data<double>().ToArray();
    }

    public static long[] Longs(Tensor tensor) => tensor.detach().cpu().data<long>().ToArray();

    /// <summary>The live tensor behind a state-dict key.</summary>
    public static Tensor State(nn.Module module, string key) =>
        module.state_dict().TryGetValue(key, out var tensor) ? tensor : throw new KeyNotFoundException(key);

    public static void Assign(nn.Module module, string key, Tensor values)
    {
        using var noGrad = no_grad();
        using (values)
            State(module, key).copy_(values);
    }

    public static void Assign(nn.Module module, string key, double[] values)
    {
        var target = State(module, key);
        Assign(module, key, tensor(values).to(target.dtype).view(target.shape));
    }

    /// <summary>
    /// Gives every channel its own BN weight (random sign, magnitude e^U(-3, 1)), bias U(-2.5, 1), running
    /// mean N(0, 1) and running variance e^U(-1, 1), and the conv weight N(0, 1) entries, so that channel
    /// importances spread over several orders of magnitude.
    /// </summary>
    public static void RandomizeState(SelectiveConv2d layer, Generator generator)
    {
        long channels = layer.InChannels;
        var dtype = State(layer, "conv.weight").dtype;
        var sign = rand(channels, dtype, generator: generator).lt(0.5).to(dtype) * 2 - 1;
        Assign(layer, "norm.weight", sign * (rand(channels, dtype, generator: generator) * 4 - 3).exp());
        Assign(layer, "norm.bias", rand(channels, dtype, generator: generator) * 3.5 - 2.5);
        Assign(layer, "norm.running_mean", randn(channels, dtype, generator: generator));
        Assign(layer, "norm.running_var", (rand(channels, dtype, generator: generator) * 2 - 1).exp());
        var weight = State(layer, "conv.weight");
        Assign(layer, "conv.weight", randn(weight.shape, dtype, generator: generator));
    }

    /// <summary>
    /// Eval-mode BN with running mean 0 and running variance 1 - eps: an N(0, 1) input then leaves BN as
    /// exactly N(b, g^2), the ECDM's model.
    /// </summary>
    public static void MakeBatchNormIdentityStatistics(SelectiveConv2d layer)
    {
        Assign(layer, "norm.running_mean", zeros(layer.InChannels, ScalarType.Float64));
        Assign(layer, "norm.running_var", full(layer.InChannels, 1 - 1e-5, ScalarType.Float64));
        layer.eval();
    }
}
