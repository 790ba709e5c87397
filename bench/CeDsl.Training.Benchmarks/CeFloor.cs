using System.Diagnostics;
using System.Globalization;
using CeDsl.Bench;
using CeDsl.Layers;
using CeDsl.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training.Benchmarks;

/// <summary>
/// What each CE of a network must cost, from counts and measured primitives, beside what it costs.
/// </summary>
/// <remarks>
/// <para>Training (forward + backward) reads and writes the activation in four passes that cannot be
/// merged, because each needs a statistic of the whole batch computed by the pass before it:
/// forward (1) read X for the instance means and the instance-centred Gram matrices ((d + 1) / 2
/// multiply-adds per element, symmetric); (2) read X, write Y = M_n X (d); backward (3) read dY and X
/// for dM = dY X^T (d); (4) read dY and X, write dX = M^T dY + A (X - mu) (2d). Each pass costs at
/// least the longer of its memory traffic (the measured time of one read, and of one read plus write,
/// of the activation) and its multiply-adds at the measured matrix-product rate. Between the passes
/// come the gate (6 C x C/r products per sample, forward and backward) and the Newton iterations
/// (18 d x d products per group), at the same rate, and one autograd node: the measured cost of a
/// custom autograd function's forward and backward on a one-element tensor.</para>
/// <para>Evaluation reads each sample once while it stays in cache (variances, gate, map): one read
/// plus write, d multiply-adds per element, the gate, and one operator.</para>
/// </remarks>
internal static class CeFloor
{
    public static List<string> Derive(StepResult result, Options options)
    {
        var invariant = CultureInfo.InvariantCulture;
        int repeats = Math.Max(5, 2 * options.Runs);
        var machine = Primitives.Measure();
        bool training = result.Case.Training;
        var lines = new List<string>
        {
            "",
            $"CE floor, {result.Case}: {machine.Describe(repeats)}; each CE alone on the input it received in the network, median of {repeats}.",
            "",
            "| CE | input | d | one read | read + write | multiply-adds | floor | measured | measured, operators |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        };

        manual_seed(1);
        using var network = Zoo.Create("ce-" + result.Case.Family);
        var captured = Capture(network, result.Case.Batch, result.Input);
        double floorTotal = 0, measuredTotal = 0, operatorsTotal = 0;
        foreach (var (path, ce, input) in captured)
        {
            var (read, readWrite) = machine.Traffic(input, repeats);
            double floor, macs;
            if (training)
                (floor, macs, _) = TrainingFloor(machine, ce, input.shape, read, readWrite);
            else
                (floor, macs) = EvaluationFloor(machine, ce, input.shape, readWrite);
            double measured = TimeAlone(ce, input, training, operatorsOnly: false, repeats);
            double operators = options.Operators ? TimeAlone(ce, input, training, operatorsOnly: true, repeats) : double.NaN;
            floorTotal += floor;
            measuredTotal += measured;
            operatorsTotal += operators;
            lines.Add(string.Create(invariant,
                $"| {path} | {string.Join("x", input.shape)} | {ce.GroupSize} | {read:F2} ms | {readWrite:F2} ms | {macs / 1e6:F0} M | {floor:F2} ms | {measured:F2} ms | {(options.Operators ? operators.ToString("F2", invariant) + " ms" : "-")} |"));
            input.Dispose();
        }
        double baseline = result.BaselineMs;
        var withCe = result.Variants.Single(v => v.Name == "CE");
        lines.Add(string.Create(invariant,
            $"| all {captured.Count} | | | | | | **{floorTotal:F1} ms** | {measuredTotal:F1} ms | {(options.Operators ? operatorsTotal.ToString("F1", invariant) + " ms" : "-")} |"));
        lines.Add("");
        lines.Add(string.Create(invariant,
            $"BN network step {baseline:F1} ms: the floor of {result.Case.Family} with CE is **x{1 + floorTotal / baseline:F3}** " +
            $"(the CEs alone as measured: x{1 + measuredTotal / baseline:F3}); the CE network measured x{Statistics.Median(result.Ratios(withCe)):F3} in the same process."));
        return lines;
    }

    /// <summary>
    /// The floor of the CE layer benchmark's training step (bench/run-ce-bench.sh: BN, then BN followed by CE, forward
    /// and backward with a fixed upstream gradient) at each of its shapes: BN's step and BN+CE's step measured side by
    /// side in this process, and BN's step plus CE's floor.
    /// </summary>
    public static List<string> DeriveLayers(Options options)
    {
        var invariant = CultureInfo.InvariantCulture;
        int repeats = Math.Max(5, 2 * options.Runs);
        var machine = Primitives.Measure();
        var lines = new List<string>
        {
            string.Create(invariant, $"CE layer floor, training step, {options.Threads} threads: {machine.Describe(repeats)}; ") +
            string.Create(invariant, $"BN and BN+CE timed in turn, {options.Runs} runs of {options.Iterations} steps each, median step per run; the ratios are medians of the per-run ratios, range in brackets."),
            "",
            "| shape | d | one read | read + write | CE multiply-adds | CE floor | of it, memory | BN step | BN+CE step | floor / BN | measured / BN |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        };
        foreach (var shape in LayerShape.All)
        {
            using var scope = NewDisposeScope();
            manual_seed(1);
            var input = randn(shape.Batch, shape.Channels, shape.Size, shape.Size).requires_grad_(true);
            var upstream = randn_like(input);
            var bn = nn.BatchNorm2d(shape.Channels);
            var ce = new ChannelEquilibrium(shape.Channels);
            var bnCe = nn.Sequential(("bn", bn), ("ce", ce));
            bn.train();
            bnCe.train();

            var (read, readWrite) = machine.Traffic(input.detach(), repeats);
            var (floor, macs, memory) = TrainingFloor(machine, ce, input.shape, read, readWrite);
            var bnSteps = new List<double>();
            var bnCeSteps = new List<double>();
            for (int run = -1; run < options.Runs; run++)
            {
                double bnStep = Median(options.Iterations, () => Step(bn, input, upstream));
                double bnCeStep = Median(options.Iterations, () => Step(bnCe, input, upstream));
                if (run < 0)
                    continue; // warm-up
                bnSteps.Add(bnStep);
                bnCeSteps.Add(bnCeStep);
            }
            var floorRatios = bnSteps.Select(step => 1 + floor / step).ToList();
            var measuredRatios = bnSteps.Zip(bnCeSteps, (b, c) => c / b).ToList();
            lines.Add(string.Create(invariant,
                $"| {shape} | {ce.GroupSize} | {read:F2} ms | {readWrite:F2} ms | {macs / 1e6:F0} M | {floor:F2} ms | {memory:F2} ms | {Statistics.Median(bnSteps):F2} ms | {Statistics.Median(bnCeSteps):F2} ms | " +
                $"x{Statistics.Median(floorRatios):F2} ({floorRatios.Min():F2}-{floorRatios.Max():F2}) | x{Statistics.Median(measuredRatios):F2} ({measuredRatios.Min():F2}-{measuredRatios.Max():F2}) |"));
        }
        lines.Add("");
        lines.Add("CE floor: each of its four passes at the longer of its memory traffic and its multiply-adds at the matrix-product rate, the gate and Newton iterations at that rate, and one autograd node; " +
                  "\"of it, memory\": the part of the floor set by the passes' memory traffic (4 reads and 2 reads + writes of the activation).");
        return lines;
    }

    /// <summary>One training step of a layer: forward, backward with <paramref name="upstream"/>, gradients cleared.</summary>
    private static Tensor Step(nn.Module<Tensor, Tensor> layer, Tensor input, Tensor upstream)
    {
        var output = layer.call(input);
        output.backward([upstream]);
        layer.zero_grad();
        input.grad!.zero_();
        return output;
    }

    /// <summary>
    /// CE's training floor (forward and backward) on an input of <paramref name="shape"/>: the four passes, each the longer of
    /// its memory traffic and its multiply-adds, then the gate and the Newton iterations, and one autograd node; and the part
    /// of it that the passes' memory traffic sets.
    /// </summary>
    private static (double Floor, double MultiplyAdds, double Memory) TrainingFloor(Primitives machine, ChannelEquilibrium ce, long[] shape, double read, double readWrite)
    {
        long samples = shape[0], channels = shape[1], elements = shape.Aggregate(1L, (a, b) => a * b);
        int d = ce.GroupSize;
        double gate = 6.0 * samples * channels * (channels / 4);
        double newton = 18.0 * ce.Groups * d * d * d;
        var passes = new (double Memory, double MultiplyAdds)[]
        {
            (read, (d + 1) / 2.0 * elements), (readWrite, (double)d * elements),
            (2 * read, (double)d * elements), (read + readWrite, 2.0 * d * elements),
        };
        double macs = passes.Sum(p => p.MultiplyAdds) + gate + newton;
        double floor = passes.Sum(p => Math.Max(p.Memory, machine.Milliseconds(p.MultiplyAdds))) + machine.Milliseconds(gate + newton) + machine.NodeMs;
        double memory = passes.Where(p => p.Memory >= machine.Milliseconds(p.MultiplyAdds)).Sum(p => p.Memory);
        return (floor, macs, memory);
    }

    /// <summary>CE's evaluation floor: one read plus write of each sample while it stays in cache, its map, the gate, one operator.</summary>
    private static (double Floor, double MultiplyAdds) EvaluationFloor(Primitives machine, ChannelEquilibrium ce, long[] shape, double readWrite)
    {
        long samples = shape[0], channels = shape[1], elements = shape.Aggregate(1L, (a, b) => a * b);
        double map = (double)ce.GroupSize * elements, gate = 2.0 * samples * channels * (channels / 4);
        return (Math.Max(readWrite, machine.Milliseconds(map)) + machine.Milliseconds(gate) + machine.OperatorMs, map + gate);
    }

    /// <summary>Every CE of the network with the input it receives in one training-mode forward pass.</summary>
    private static List<(string Path, ChannelEquilibrium Module, Tensor Input)> Capture(nn.Module<Tensor, Tensor> network, int batch, long[] shape)
    {
        var captured = new List<(string, ChannelEquilibrium, Tensor)>();
        var removers = new List<Action>();
        foreach (var (path, module) in network.named_modules())
        {
            if (module is not ChannelEquilibrium ce)
                continue;
            var remover = ce.register_forward_pre_hook((_, x) =>
            {
                captured.Add((path, ce, x.detach().clone().DetachFromDisposeScope()));
                return x;
            });
            removers.Add(() => remover.remove());
        }
        using (NewDisposeScope())
        using (no_grad())
        {
            network.train();
            manual_seed(2);
            network.call(randn([batch, .. shape]));
        }
        removers.ForEach(remove => remove());
        return captured;
    }

    /// <summary>One CE alone: forward and backward (fixed upstream gradient) in training, the forward without gradient in evaluation.</summary>
    private static double TimeAlone(ChannelEquilibrium ce, Tensor input, bool training, bool operatorsOnly, int repeats)
    {
        ce.OperatorsOnly = operatorsOnly;
        try
        {
            if (!training)
            {
                ce.eval();
                using var noGrad = no_grad();
                return Median(repeats, () => ce.call(input));
            }
            ce.train();
            using var x = input.clone().requires_grad_(true);
            using var upstream = randn_like(input);
            return Median(repeats, () =>
            {
                var output = ce.call(x);
                output.backward([upstream]);
                ce.zero_grad();
                x.grad!.zero_();
                return output;
            });
        }
        finally
        {
            ce.OperatorsOnly = false;
        }
    }

    /// <summary>The machine's primitives a floor is built from, each the fastest of its repetitions.</summary>
    private sealed record Primitives(double Rate, double OperatorMs, double NodeMs)
    {
        /// <summary>The rate of a 1024^3 float32 matrix product, one libtorch operator and one custom autograd node, each on a small tensor.</summary>
        public static Primitives Measure() => new(MultiplyAddRate(), OperatorCost(), NodeCost());

        public string Describe(int repeats) =>
            string.Create(CultureInfo.InvariantCulture, $"matrix-product rate {Rate / 1e9:F1} G multiply-adds/s (1024^3 float32 matmul), fastest of 9; ") +
            string.Create(CultureInfo.InvariantCulture, $"one libtorch operator {OperatorMs * 1e3:F1} us, one custom autograd node (forward + backward) {NodeMs * 1e3:F1} us (fastest of 201); ") +
            $"one read (a sum) and one read + write (a copy) of each CE's input, fastest of {repeats}";

        /// <summary>Milliseconds of <paramref name="multiplyAdds"/> at the matrix-product rate.</summary>
        public double Milliseconds(double multiplyAdds) => multiplyAdds / Rate * 1e3;

        /// <summary>One read (a sum) and one read plus write (a copy) of <paramref name="input"/>, less one operator's cost.</summary>
        public (double Read, double ReadWrite) Traffic(Tensor input, int repeats)
        {
            double read = Math.Max(0, Fastest(repeats, () => input.sum()) - OperatorMs);
            using var copy = empty_like(input);
            double readWrite = Math.Max(0, Fastest(repeats, () => copy.copy_(input)) - OperatorMs);
            return (read, readWrite);
        }

        private static double MultiplyAddRate()
        {
            using var a = randn(1024, 1024);
            using var b = randn(1024, 1024);
            return Math.Pow(1024, 3) / (Fastest(9, () => a.mm(b)) / 1e3);
        }

        private static double OperatorCost()
        {
            using var a = ones(1);
            using var b = ones(1);
            return Fastest(201, () => a.add(b));
        }

        private static double NodeCost()
        {
            using var a = ones(1).requires_grad_(true);
            return Fastest(201, () =>
            {
                var output = Identity.apply(a);
                output.backward();
                return output;
            });
        }
    }

    /// <summary>
    /// The fastest of <paramref name="repeats"/> calls, in milliseconds: the primitives of a floor are what the
    /// machine can do at its best (a busy machine only makes calls slower).
    /// </summary>
    private static double Fastest(int repeats, Func<Tensor> call) => Times(repeats, call).Min();

    /// <summary>Median milliseconds of <paramref name="call"/>.</summary>
    private static double Median(int repeats, Func<Tensor> call) => Statistics.Median(Times(repeats, call));

    /// <summary>Milliseconds of <paramref name="repeats"/> calls (each result disposed), after two untimed calls.</summary>
    private static List<double> Times(int repeats, Func<Tensor> call)
    {
        var times = new List<double>();
        for (int i = -2; i < repeats; i++)
        {
            using var scope = NewDisposeScope();
            long started = Stopwatch.GetTimestamp();
            call();
            if (i >= 0)
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        return times;
    }

    private sealed class Identity : autograd.SingleTensorFunction<Identity>
    {
        public override string Name => nameof(Identity);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars) => ((Tensor)vars[0]).clone();

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output) => [grad_output];
    }
}
