using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CeDsl.Data;
using TorchSharp;
using static TorchSharp.torch;

using static CeDsl.Cli.Formatting;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl bench</c>: median time of an evaluation forward pass and of a training step (forward,
/// backward, SGD) for one or several networks (of the zoo or of --assembly), on random images.
/// </summary>
internal sealed class BenchCommand
{
    private readonly Option<string[]> _models = new("--model")
    {
        Description = "Networks of the zoo or of --assembly (several: --model resnet20 ce-resnet20)",
        AllowMultipleArgumentsPerToken = true,
        HelpName = "name",
    };
    private readonly Option<string[]> _checkpoints = new("--checkpoint")
    {
        Description = "Checkpoints written by cedsl train or cedsl fold, instead of --model: evaluation is timed with their state (several: --checkpoint a.safetensors b.safetensors)",
        AllowMultipleArgumentsPerToken = true,
        HelpName = "file",
    };
    private readonly Option<int> _batch = CliOptions.Integer("--batch", "Images per batch", 32, 2, "must be at least 2 (batch normalization needs batch statistics)");
    private readonly Option<string?> _assembly = NetworkCatalog.AssemblyOption();
    private readonly Option<long[]?> _input = InputShapes.Option($"Input shape CxHxW [default: {InputShapes.Format(Models.InputShape)}, a padded Fashion-MNIST image, as cedsl train builds the networks]");
    private readonly Option<int> _iterations = CliOptions.Integer("--iterations", "Timed iterations of each measurement", 20, 1, "must be positive");
    private readonly Option<int> _warmup = CliOptions.Integer("--warmup", "Untimed iterations before timing", 3, 1,
        "must be at least 1 (evaluation needs the running statistics of one training step)");

    public static Command Create() => new BenchCommand().Build();

    private Command Build()
    {
        var command = new Command("bench", "Time evaluation and training steps (median ms, images/s) of networks on random images, or evaluation of checkpoints.")
        {
            _models, _checkpoints, _assembly, _batch, _input, _iterations, _warmup,
        };
        CommandAction.Set(command, Run);
        return command;
    }

    private int Run(ParseResult parse, CommandOutput output)
    {
        if ((parse.GetValue(_models) is { Length: > 0 }) == (parse.GetValue(_checkpoints) is { Length: > 0 }))
            throw new UserException("Give --model (networks of the zoo or of --assembly) or --checkpoint (trained or folded checkpoints), not both.");
        var networks = NetworkCatalog.Load(parse.GetValue(_assembly));
        var entries = (parse.GetValue(_models) ?? []).Select(networks.Find).ToList();
        var checkpoints = parse.GetValue(_checkpoints) ?? [];
        int batch = parse.GetValue(_batch), iterations = parse.GetValue(_iterations), warmup = parse.GetValue(_warmup);
        long[] input = parse.GetValue(_input) is { Length: > 0 } given ? given : [.. Models.InputShape];
        var text = output.Output;
        int labelWidth = Math.Max(22, checkpoints.Select(c => c.Length).DefaultIfEmpty(0).Max());
        text.WriteLine(Invariant($"batch {batch}, {iterations} timed iterations after {warmup} warm-up, {torch.get_num_threads()} threads"));
        string header = Invariant($"{(checkpoints.Length > 0 ? "checkpoint" : "model").PadRight(labelWidth)} {"input",-11} {"parameters",12} {"eval ms",9} {"eval img/s",11} {"train ms",9} {"train img/s",12}");
        text.WriteLine(header);
        text.WriteLine(new string('-', header.Length));
        void Row(string label, long[] input, nn.Module network, double evalMs, double? trainMs)
        {
            long parameters = network.parameters().Sum(p => p.numel());
            string train = trainMs is double ms ? Invariant($"{ms,9:F2} {batch * 1000 / ms,12:F1}") : $"{"-",9} {"-",12}";
            text.WriteLine(Invariant($"{label.PadRight(labelWidth)} {InputShapes.Format(input),-11} {parameters,12:N0} {evalMs,9:F2} {batch * 1000 / evalMs,11:F1} {train}"));
        }

        foreach (var entry in entries)
        {
            torch.manual_seed(1);
            using var network = entry.Create(inChannels: input[0]);
            using var images = torch.randn([batch, .. input]);
            using var labels = torch.randint(FashionMnist.Classes, [batch], ScalarType.Int64);
            using var optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9);
            void TrainStep()
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                nn.functional.cross_entropy(network.call(images), labels).backward();
                optimizer.step();
            }
            double trainMs, evalMs;
            try
            {
                network.train();
                trainMs = Median(TrainStep, warmup, iterations);
                network.eval();
                evalMs = Median(() => EvalStep(network, images), warmup, iterations);
            }
            catch (ArgumentException e)
            {
                throw new UserException($"{entry.Name} with input {InputShapes.Format(input)}: {e.Message}", e);
            }
            Row(entry.Name, input, network, evalMs, trainMs);
        }

        // Checkpoints (a folded one cannot train): evaluation only, each with the state it holds.
        foreach (string checkpoint in checkpoints)
        {
            using var model = LoadedModel.Load(checkpoint, network: null, networks);
            torch.manual_seed(1);
            using var images = torch.randn([batch, .. input]);
            double evalMs;
            try
            {
                evalMs = Median(() => EvalStep(model.Network, images), warmup, iterations);
            }
            catch (ArgumentException e)
            {
                throw new UserException($"{model.Description} from {checkpoint} with input {InputShapes.Format(input)}: {e.Message}", e);
            }
            Row(checkpoint, input, model.Network, evalMs, trainMs: null);
        }
        return 0;
    }

    private static void EvalStep(nn.Module<Tensor, Tensor> network, Tensor images)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        network.call(images);
    }

    private static double Median(Action step, int warmup, int iterations)
    {
        for (int i = 0; i < warmup; i++)
            step();
        var times = new double[iterations];
        for (int i = 0; i < iterations; i++)
        {
            long started = Stopwatch.GetTimestamp();
            step();
            times[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }
        Array.Sort(times);
        return iterations % 2 == 1 ? times[iterations / 2] : (times[iterations / 2 - 1] + times[iterations / 2]) / 2;
    }

}
