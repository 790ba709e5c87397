using CeDsl.Networks;
using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Onnx.Tests;

/// <summary>
/// Zoo networks as an exporter meets them after training: parameters moved off their initial values, running
/// statistics estimated by training-mode passes over data (not the initial zeros and ones), selective layers with
/// released channels and shifted copies. Forward passes only: no backward kernel runs in the test host.
/// </summary>
internal static class TrainedNetworks
{
    /// <summary>
    /// The smallest square input the zoo network takes everywhere: CE needs more than one position where it sits; an instance
    /// norm over the 1x1 or 2x2 maps of ResNet-50's last stage at 32x32 or 64x64 divides by the spread of one to four values
    /// and turns the last-bit differences of two runtimes' convolutions into 1e-4 of the logits, so those networks get 128x128
    /// (4x4 there).
    /// </summary>
    public static long Side(ZooEntry entry) =>
        entry.Variant is "in" or "ce+in" ? 128
        : entry.Family.StartsWith("mobilenet", StringComparison.Ordinal) || entry.Family.StartsWith("shufflenet", StringComparison.Ordinal) ? 64 : 32;

    /// <summary>The zoo network <paramref name="entry"/>, trained as described, in evaluation mode.</summary>
    public static nn.Module<Tensor, Tensor> Create(ZooEntry entry, long side, int seed = 5)
    {
        var network = entry.Create();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        manual_seed(seed);
        // Channels released and re-used as shifted copies first: a copy's convolution weights start at zero, and the
        // perturbation below makes the shifted copies count in the output.
        var random = new Random(seed);
        foreach (var layer in network.modules().OfType<SelectiveConv2d>())
        {
            layer.Gamma = 0.1;
            layer.Dealloc();
            layer.Realloc(random);
        }
        foreach (var (_, parameter) in network.named_parameters())
        {
            // A tenth of a random weight's spread; 0.05 for constant ones (a norm's weight and bias, CE's lambda).
            double spread = parameter.numel() > 1 ? parameter.std().item<float>() : 0;
            parameter.add_(randn_like(parameter) * (spread > 0 ? 0.1 * spread : 0.05));
        }
        network.train();
        for (int step = 0; step < 3; step++)
            network.call(randn(4, entry.InputShape[0], side, side) * 2 + 0.5);

        network.eval();
        return network;
    }

    /// <summary>A random float32 batch of <paramref name="batch"/> images, and its values.</summary>
    public static (Tensor Tensor, float[] Values, long[] Shape) Batch(long batch, long channels, long side, int seed)
    {
        manual_seed(seed);
        var images = randn(batch, channels, side, side);
        return (images, images.data<float>().ToArray(), images.shape);
    }

    /// <summary>The network's evaluation output for <paramref name="images"/>.</summary>
    public static float[] Evaluate(nn.Module<Tensor, Tensor> network, Tensor images)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return network.call(images.clone()).contiguous().data<float>().ToArray();
    }

    /// <summary>max |actual - expected| / max |expected|.</summary>
    public static double RelativeDifference(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(v => Math.Abs((double)v)), difference = 0;
        for (int i = 0; i < expected.Length; i++)
            difference = Math.Max(difference, Math.Abs((double)actual[i] - expected[i]));
        return scale > 0 ? difference / scale : difference;
    }
}
