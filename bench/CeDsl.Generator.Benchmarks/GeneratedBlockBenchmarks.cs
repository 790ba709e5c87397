using BenchmarkDotNet.Attributes;
using CeDsl.Generator.Tests.Equivalence;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Generator.Benchmarks;

/// <summary>
/// The generated CE bottleneck against its hand-written TorchSharp twin (same weights, batch 8,
/// 256 channels at 28x28): the generated code must cost the same.
/// </summary>
public class GeneratedBlockBenchmarks
{
    private nn.Module<Tensor, Tensor> generated = null!;
    private nn.Module<Tensor, Tensor> handWritten = null!;
    private Tensor input = null!;

    [Params("generated", "hand-written")]
    public string Module { get; set; } = "generated";

    private nn.Module<Tensor, Tensor> Subject => Module == "generated" ? generated : handWritten;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(2);
        torch.manual_seed(0);
        generated = new DslBottleneck(256, 64, 1);
        handWritten = new HandBottleneck(256, 64, 1);
        handWritten.load_state_dict(generated.state_dict());
        input = torch.randn(8, 256, 28, 28);
        // One training step so that evaluation has running statistics.
        generated.train();
        handWritten.train();
        using (var a = generated.call(input)) { }
        using (var b = handWritten.call(input)) { }
    }

    [Benchmark(Description = "train forward+backward")]
    public void Train()
    {
        Subject.train();
        using var scope = torch.NewDisposeScope();
        var output = Subject.call(input);
        output.sum().backward();
        Subject.zero_grad();
    }

    [Benchmark(Description = "eval forward")]
    public void Eval()
    {
        Subject.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Subject.call(input);
    }
}
