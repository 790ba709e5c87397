using System.Diagnostics;
using System.Globalization;
using CeDsl.Generator.Tests.Equivalence;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Generator.Benchmarks;

/// <summary>
/// The generated block against the hand-written one, timed in alternation (ABBA order) so that a
/// shared, busy machine slows both equally; prints the median times and the median of the
/// per-round ratios.
/// </summary>
internal static class InterleavedRatio
{
    public static void Run(int rounds)
    {
        torch.set_num_threads(2);
        torch.manual_seed(0);
        using var generated = new DslBottleneck(256, 64, 1);
        using var handWritten = new HandBottleneck(256, 64, 1);
        handWritten.load_state_dict(generated.state_dict());
        using var input = torch.randn(8, 256, 28, 28);
        Input = input;

        Console.WriteLine($"CE bottleneck (256 -> 64 -> 256 channels, batch 8, 28x28), {rounds} rounds, ABBA order, 2 threads");
        Console.WriteLine();
        Console.WriteLine("| mode | generated (median) | hand-written (median) | generated / hand-written (median of rounds) |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var train in new[] { true, false })
        {
            Action<nn.Module<Tensor, Tensor>> step = train ? TrainStep : EvalStep;
            for (int i = 0; i < 3; i++) { step(generated); step(handWritten); }
            var a = new List<double>();
            var b = new List<double>();
            var ratios = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                double ta, tb;
                if (round % 2 == 0) { ta = Time(step, generated); tb = Time(step, handWritten); }
                else { tb = Time(step, handWritten); ta = Time(step, generated); }
                a.Add(ta);
                b.Add(tb);
                ratios.Add(ta / tb);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(train ? "train forward+backward" : "eval forward")} | {Median(a):F1} ms | {Median(b):F1} ms | {Median(ratios):F3} |"));
        }
    }

    private static void TrainStep(nn.Module<Tensor, Tensor> module)
    {
        module.train();
        using var scope = torch.NewDisposeScope();
        module.call(Input!).sum().backward();
        module.zero_grad();
    }

    private static void EvalStep(nn.Module<Tensor, Tensor> module)
    {
        module.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        module.call(Input!);
    }

    private static Tensor? Input;

    private static double Time(Action<nn.Module<Tensor, Tensor>> step, nn.Module<Tensor, Tensor> module)
    {
        var clock = Stopwatch.StartNew();
        step(module);
        return clock.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
