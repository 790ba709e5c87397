using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using CeDsl.Networks;
using CeDsl.Platform;
using TorchSharp;
using static TorchSharp.torch;

using static CeDsl.Cli.Formatting;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl train-step</c>, a hidden diagnostic: one training step (forward, backward, SGD) of each zoo
/// network at the smallest square input it accepts, on random images. Each network is named on stdout
/// before its step, so that when native code kills the process (oneDNN's SIGFPE, for instance, which no
/// handler can catch) the last line says which network did it.
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
            double loss = TrainStep(network, batch, [channels, size, size], entry.Classes);
            if (!double.IsFinite(loss))
                throw new UserException(Invariant($"{entry.Name}: the loss of the step at {channels}x{size}x{size} is {loss}."));
            output.Output.WriteLine(Invariant($"ok, loss {loss:F3}, {watch.ElapsedMilliseconds} ms"));
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
}
