using System.Diagnostics;
using System.Globalization;
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
        double rate = MultiplyAddRate(), operatorMs = OperatorMs(), nodeMs = NodeMs();
        bool training = result.Case.Training;
        var lines = new List<string>
        {
            "",
            $"CE floor, {result.Case}: matrix-product rate {rate / 1e9:F1} G multiply-adds/s (1024^3 float32 matmul), fastest of 9; " +
            string.Create(invariant, $"one libtorch operator {operatorMs * 1e3:F1} us, one custom autograd node (forward + backward) {nodeMs * 1e3:F1} us (fastest of 201); ") +
            $"one read (a sum) and one read + write (a copy) of each CE's input, fastest of {repeats}; each CE alone on the input it received in the network, median of {repeats}.",
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
            long elements = input.numel(), channels = input.shape[1], samples = input.shape[0];
            int d = ce.GroupSize;
            long hidden = channels / 4, groups = ce.Groups;
            double read = Math.Max(0, Fastest(repeats, () => input.sum()) - operatorMs);
            using var copy = empty_like(input);
            double readWrite = Math.Max(0, Fastest(repeats, () => copy.copy_(input)) - operatorMs);

            double macs, floor;
            double gate = training ? 6.0 * samples * channels * hidden : 2.0 * samples * channels * hidden;
            if (training)
            {
                double newton = 18.0 * groups * d * d * d;
                var passes = new (double Memory, double MultiplyAdds)[]
                {
                    (read, (d + 1) / 2.0 * elements), (readWrite, (double)d * elements),
                    (2 * read, (double)d * elements), (read + readWrite, 2.0 * d * elements),
                };
                macs = passes.Sum(p => p.MultiplyAdds) + gate + newton;
                floor = passes.Sum(p => Math.Max(p.Memory, p.MultiplyAdds / rate * 1e3)) + (gate + newton) / rate * 1e3 + nodeMs;
            }
            else
            {
                macs = (double)d * elements + gate;
                floor = Math.Max(readWrite, (double)d * elements / rate * 1e3) + gate / rate * 1e3 + operatorMs;
            }
            double measured = TimeAlone(ce, input, training, operatorsOnly: false, repeats);
            double operators = options.Operators ? TimeAlone(ce, input, training, operatorsOnly: true, repeats) : double.NaN;
            floorTotal += floor;
            measuredTotal += measured;
            operatorsTotal += operators;
            lines.Add(string.Create(invariant,
                $"| {path} | {string.Join("x", input.shape)} | {d} | {read:F2} ms | {readWrite:F2} ms | {macs / 1e6:F0} M | {floor:F2} ms | {measured:F2} ms | {(options.Operators ? operators.ToString("F2", invariant) + " ms" : "-")} |"));
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

    /// <summary>Multiply-adds per second of a 1024 x 1024 by 1024 x 1024 float32 matrix product.</summary>
    private static double MultiplyAddRate()
    {
        using var a = randn(1024, 1024);
        using var b = randn(1024, 1024);
        return Math.Pow(1024, 3) / (Fastest(9, () => a.mm(b)) / 1e3);
    }

    /// <summary>One libtorch operator on a one-element tensor, through TorchSharp.</summary>
    private static double OperatorMs()
    {
        using var a = ones(1);
        using var b = ones(1);
        return Fastest(201, () => a.add(b));
    }

    /// <summary>A custom autograd function's forward and backward on a one-element tensor.</summary>
    private static double NodeMs()
    {
        using var a = ones(1).requires_grad_(true);
        return Fastest(201, () =>
        {
            var output = Identity.apply(a);
            output.backward();
            return output;
        });
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
