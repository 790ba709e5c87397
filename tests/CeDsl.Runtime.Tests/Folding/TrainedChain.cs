using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Folding;

/// <summary>
/// A conv -> norm -> block chain with random weights, trained for a few SGD steps on random data
/// (so every running statistic has moved away from its initial value), then put in evaluation mode.
/// </summary>
internal sealed class TrainedChain
{
    private const int TrainingSteps = 4;

    private TrainedChain(Conv2d conv, nn.Module<Tensor, Tensor>? norm, nn.Module<Tensor, Tensor>? block, Sequential unfolded, ScalarType dtype)
    {
        Conv = conv;
        Norm = norm;
        Block = block;
        Unfolded = unfolded;
        DType = dtype;
    }

    public Conv2d Conv { get; }

    public nn.Module<Tensor, Tensor>? Norm { get; }

    public nn.Module<Tensor, Tensor>? Block { get; }

    /// <summary>conv, norm, block in one Sequential (evaluation mode after <see cref="Train"/>).</summary>
    public Sequential Unfolded { get; }

    public ScalarType DType { get; }

    public long InChannels => Conv.in_channels;

    /// <summary>Randomizes every parameter from <paramref name="seed"/>, trains, and switches to evaluation mode.</summary>
    public static TrainedChain Train(Conv2d conv, nn.Module<Tensor, Tensor>? norm, nn.Module<Tensor, Tensor>? block, int seed, long size = 9)
    {
        var parts = new List<(string, nn.Module<Tensor, Tensor>)> { ("conv", conv) };
        if (norm is not null)
            parts.Add(("norm", norm));
        if (block is not null)
            parts.Add(("block", block));
        var unfolded = nn.Sequential(parts);
        var dtype = conv.weight.dtype;
        var chain = new TrainedChain(conv, norm, block, unfolded, dtype);

        Randomize(unfolded, seed);
        var initial = RunningStatistics(unfolded);
        var optimizer = optim.SGD(unfolded.parameters(), 0.05);
        unfolded.train();
        var generator = new Generator((ulong)seed + 1000);
        for (int step = 0; step < TrainingSteps; step++)
        {
            using var scope = NewDisposeScope();
            var x = chain.Input(generator, n: 6, size: size, offset: 0.3 * step - 0.5);
            var output = unfolded.call(x);
            var target = randn(output.shape, dtype: dtype, generator: generator);
            var loss = (output - target).pow(2).mean();
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
        unfolded.eval();
        foreach (var (name, value) in RunningStatistics(unfolded))
            Assert.False(value.equal(initial[name]).all().item<bool>(), $"training left {name} at its initial value");
        return chain;
    }

    private static Dictionary<string, Tensor> RunningStatistics(nn.Module module) =>
        module.named_buffers().Where(entry => entry.name.Split('.')[^1].StartsWith("running_", StringComparison.Ordinal))
            .ToDictionary(entry => entry.name, entry => entry.buffer.detach().clone());

    /// <summary>An input with per-channel scales and an offset, like a trained network's activations.</summary>
    public Tensor Input(Generator generator, long n = 4, long size = 9, double offset = 0.2) =>
        randn(new[] { n, InChannels, size, size }, dtype: DType, generator: generator)
        * linspace(0.5, 2.0, InChannels, dtype: DType).view(1, InChannels, 1, 1) + offset;

    /// <summary>The unfolded evaluation-mode output.</summary>
    public Tensor Evaluate(Tensor input)
    {
        using var noGrad = no_grad();
        return Unfolded.call(input);
    }

    /// <summary>
    /// Every parameter drawn from <paramref name="seed"/>: matrices and kernels ~ N(0, 1/fan_in), norm
    /// scales ~ 1 + N(0, 0.2^2), biases ~ N(0, 0.2^2), CE's x_weight ~ N(0, 1) (lambda away from 1/2).
    /// </summary>
    private static void Randomize(nn.Module module, int seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in module.named_parameters())
        {
            var noise = randn(parameter.shape, dtype: parameter.dtype, generator: generator);
            if (name.EndsWith("x_weight", StringComparison.Ordinal))
                parameter.copy_(noise);
            else if (parameter.dim() > 1)
                parameter.copy_(noise / Math.Sqrt(parameter.numel() / parameter.shape[0]));
            else if (name.EndsWith("weight", StringComparison.Ordinal))
                parameter.copy_(1 + 0.2 * noise);
            else
                parameter.copy_(0.2 * noise);
        }
    }
}
