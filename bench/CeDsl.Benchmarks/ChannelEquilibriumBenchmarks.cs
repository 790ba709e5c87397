using CeDsl.Bench;
using BenchmarkDotNet.Attributes;
using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Benchmarks;

/// <summary>
/// One normalization layer followed by the block under test, at ResNet-50 shapes (N = 32;
/// C = 256 at 56x56, C = 1024 at 14x14): forward+backward in training mode and forward in
/// evaluation mode (docs/benchmarks/ce-layer.md).
/// The PyTorch reference (bench/pytorch/ce_bench.py) measures the same cases.
/// </summary>
public class ChannelEquilibriumBenchmarks
{
    /// <summary>BN_CE_operators: CE on libtorch's operators only, as the trainable CE computed before the CPU kernels.</summary>
    public enum Block { BN, BN_SE, BN_CE, BN_CE_operators, BN_BD, BN_AII }

    [ParamsSource(nameof(Shapes))]
    public LayerShape Shape { get; set; } = LayerShape.All[0];

    [ParamsAllValues]
    public Block Variant { get; set; }

    public static IEnumerable<LayerShape> Shapes => LayerShape.All;

    private nn.Module<Tensor, Tensor> model = null!;
    private Tensor input = null!;
    private Tensor upstreamGradient = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(BenchmarkThreads.Count);
        torch.manual_seed(0);
        model = Build(Variant, Shape.Channels);
        input = randn(Shape.Batch, Shape.Channels, Shape.Size, Shape.Size).requires_grad_(true);
        upstreamGradient = randn(Shape.Batch, Shape.Channels, Shape.Size, Shape.Size);
        // Running statistics must exist before evaluation (CE refuses to evaluate untrained). Steps until one
        // takes no fresh memory pages: the first case of the process grows the allocator's heap, which BenchmarkDotNet's
        // two warm-up iterations did not finish (BN at C=1024 measured 26-183 ms a step there, more than BN+CE later).
        model.train();
        for (int step = 0; step < MaxSetupSteps; step++)
        {
            long faults = PageFaults.Minor();
            TrainStep();
            if (PageFaults.Minor() - faults < PageFaults.Settled)
                break;
        }
    }

    private const int MaxSetupSteps = 20;

    [GlobalCleanup]
    public void Cleanup()
    {
        model.Dispose();
        input.Dispose();
        upstreamGradient.Dispose();
    }

    [Benchmark]
    public void TrainForwardBackward()
    {
        model.train();
        TrainStep();
    }

    [Benchmark]
    public void EvalForward()
    {
        model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        model.call(input);
    }

    private void TrainStep()
    {
        using var scope = NewDisposeScope();
        var output = model.call(input);
        output.backward(new[] { upstreamGradient });
        model.zero_grad();
        input.grad?.zero_();
    }

    internal static nn.Module<Tensor, Tensor> Build(Block variant, long channels) => variant switch
    {
        Block.BN => nn.Sequential(("bn", nn.BatchNorm2d(channels))),
        Block.BN_SE => nn.Sequential(("bn", nn.BatchNorm2d(channels)), ("se", new SqueezeExcitation(channels))),
        Block.BN_CE => nn.Sequential(("bn", nn.BatchNorm2d(channels)), ("ce", new ChannelEquilibrium(channels))),
        Block.BN_CE_operators => nn.Sequential(("bn", nn.BatchNorm2d(channels)), ("ce", new ChannelEquilibrium(channels) { OperatorsOnly = true })),
        Block.BN_BD => nn.Sequential(("bn", nn.BatchNorm2d(channels)), ("bd", new BatchDecorrelation(channels))),
        Block.BN_AII => nn.Sequential(("bn", nn.BatchNorm2d(channels)), ("aii", new AdaptiveInstanceInverse(channels))),
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };
}

internal static class BenchmarkThreads
{
    /// <summary>Both TorchSharp and the PyTorch reference run with this many intra-op threads.</summary>
    public const int Count = 2;
}
