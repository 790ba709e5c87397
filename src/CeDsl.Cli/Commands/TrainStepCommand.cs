using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using CeDsl.Networks;
using CeDsl.Platform;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

using static CeDsl.Cli.Formatting;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl train-step</c>, a hidden diagnostic: one training step (forward, backward, SGD) of each zoo
/// network at the smallest square input it accepts, on random images. Each network is named on stdout
/// before its step, so that when native code kills the process (oneDNN's SIGFPE, for instance, which no
/// handler can catch) the last line says which network did it. Then every convolution of the network
/// computes, at the input it had in the step and through the module as training calls it, its float32
/// output, input gradient and weight gradient once more, against float64: the largest relative
/// difference shows whether the kernels <see cref="OneDnnGuard"/> left on are exact for this network.
/// </summary>
internal sealed class TrainStepCommand
{
    private readonly Option<string[]> _models = new("--model")
    {
        Description = "Networks of the zoo [default: every one, in the zoo's order]",
        AllowMultipleArgumentsPerToken = true,
        HelpName = "name",
    };
    private readonly Option<int> _batch = CliOptions.Integer("--batch", "Images per batch", 2, 2, "must be at least 2 (batch normalization needs batch statistics)");

    public static Command Create() => new TrainStepCommand().Build();

    private Command Build()
    {
        var command = new Command("train-step", "Train one step of zoo networks at the smallest input each accepts, naming each network before its step.")
        {
            _models, _batch,
        };
        command.Hidden = true;
        CommandAction.Set(command, Run);
        return command;
    }

    private int Run(ParseResult parse, CommandOutput output)
    {
        var entries = parse.GetValue(_models) is { Length: > 0 } names ? names.Select(NetworkCatalog.FindInZoo).ToList() : Zoo.Entries.ToList();
        int batch = parse.GetValue(_batch);
        foreach (var entry in entries)
        {
            torch.manual_seed(1);
            using var network = entry.Create();
            long channels = entry.InputShape[0];
            long size = SmallestSize(entry, network, batch);
            output.Output.Write(Invariant($"{entry.Name} {channels}x{size}x{size} oneDNN {(OneDnnGuard.OneDnnIsOff ? "off" : "on")}: "));
            output.Output.Flush();
            var watch = Stopwatch.StartNew();
            using var inputs = new ConvolutionInputs(network);
            double loss = TrainStep(network, batch, [channels, size, size], entry.Classes);
            if (!double.IsFinite(loss))
                throw new UserException(Invariant($"{entry.Name}: the loss of the step at {channels}x{size}x{size} is {loss}."));
            long milliseconds = watch.ElapsedMilliseconds;
            var (error, worst) = inputs.WorstFloat32Error();
            output.Output.WriteLine(Invariant($"ok, loss {loss:F3}, {milliseconds} ms; {inputs.Count} convolutions within {error:0.0E+0} of float64 (worst '{worst}')"));
        }
        return 0;
    }

    /// <summary>
    /// The smallest square side at which <paramref name="network"/> runs a training-mode forward pass, without
    /// gradients (only forward kernels run): doubling from 1 up to the first side that runs, then bisecting
    /// below it, so that no pass runs at a side much larger than the answer.
    /// </summary>
    private static long SmallestSize(ZooEntry entry, nn.Module<Tensor, Tensor> network, int batch)
    {
        long channels = entry.InputShape[0], declared = entry.InputShape[1];
        long low = 0, high = 1; // low fails (or is 0), high is the candidate
        while (!Accepts(network, batch, channels, high))
        {
            if (high >= declared)
                throw new UserException(Invariant($"{entry.Name} does not run at its declared input {channels}x{declared}x{declared}."));
            (low, high) = (high, Math.Min(2 * high, declared));
        }
        while (high - low > 1)
        {
            long middle = (low + high) / 2;
            if (Accepts(network, batch, channels, middle)) high = middle;
            else low = middle;
        }
        return high;
    }

    private static bool Accepts(nn.Module<Tensor, Tensor> network, int batch, long channels, long size)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        network.train();
        try
        {
            network.call(randn([batch, channels, size, size]));
            return true;
        }
        catch (Exception e) when (e is ArgumentException or ExternalException)
        {
            return false;
        }
    }

    private static double TrainStep(nn.Module<Tensor, Tensor> network, int batch, long[] input, long classes)
    {
        using var scope = NewDisposeScope();
        using var optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9);
        network.train();
        optimizer.zero_grad();
        var loss = nn.functional.cross_entropy(network.call(randn([batch, .. input])), randint(classes, [batch]));
        loss.backward();
        optimizer.step();
        return loss.item<float>();
    }

    /// <summary>The input every float32 convolution of a network had in its last forward pass, kept until disposed.</summary>
    private sealed class ConvolutionInputs : IDisposable
    {
        private readonly List<(string Name, Conv2d Convolution, Tensor? Input)> _convolutions = [];
        private readonly List<Action> _removeHooks = [];

        public ConvolutionInputs(nn.Module network)
        {
            foreach (var (name, module) in network.named_modules())
            {
                if (module is not Conv2d convolution || convolution.weight.dtype != ScalarType.Float32)
                    continue;
                int index = _convolutions.Count;
                _convolutions.Add((name, convolution, null));
                var hook = convolution.register_forward_hook((_, input, result) =>
                {
                    _convolutions[index].Input?.Dispose();
                    _convolutions[index] = (name, convolution, input.detach().clone().DetachFromDisposeScope());
                    return result;
                });
                _removeHooks.Add(hook.remove);
            }
        }

        public int Count => _convolutions.Count(c => c.Input is not null);

        /// <summary>
        /// The largest of max |float32 - float64| / max |float64| over each convolution's output, input gradient and
        /// weight gradient (for a random output gradient), and the convolution it came from.
        /// </summary>
        public (double Error, string Convolution) WorstFloat32Error()
        {
            StopCapturing(); // the check calls the convolutions again
            var generator = new Generator(1);
            (double Error, string Convolution) worst = (0, "none");
            foreach (var (name, convolution, input) in _convolutions)
            {
                if (input is null)
                    continue;
                using var scope = NewDisposeScope();
                using var enableGrad = enable_grad();
                var x32 = input.detach().requires_grad_();
                var output32 = convolution.call(x32); // the module, so a guarded convolution computes its training form
                var upstream = randn(output32.shape, generator: generator);
                var gradients32 = autograd.grad([output32], [x32, convolution.weight], [upstream]);

                var x64 = input.to(ScalarType.Float64).requires_grad_();
                var weight64 = convolution.weight.detach().to(ScalarType.Float64).requires_grad_();
                var output64 = nn.functional.conv2d(x64, weight64, convolution.bias?.detach().to(ScalarType.Float64),
                    convolution.stride, convolution.padding, convolution.dilation, convolution.groups);
                var gradients64 = autograd.grad([output64], [x64, weight64], [upstream.to(ScalarType.Float64)]);

                double error = new[] { Relative(output32, output64), Relative(gradients32[0], gradients64[0]), Relative(gradients32[1], gradients64[1]) }.Max();
                if (error > worst.Error || double.IsNaN(error))
                    worst = (double.IsNaN(error) ? double.PositiveInfinity : error, name);
            }
            return worst;
        }

        private static double Relative(Tensor value, Tensor reference) =>
            (value.to(ScalarType.Float64) - reference).abs().max().item<double>() / Math.Max(reference.abs().max().item<double>(), double.Epsilon);

        private void StopCapturing()
        {
            foreach (var remove in _removeHooks)
                remove();
            _removeHooks.Clear();
        }

        public void Dispose()
        {
            StopCapturing();
            foreach (var (_, _, input) in _convolutions)
                input?.Dispose();
        }
    }
}
