using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

using static CeDsl.Cli.Formatting;

namespace CeDsl.Cli.Commands;

/// <summary>
/// <c>cedsl bench</c>: median time of an evaluation forward pass and of a training step (forward,
/// backward, SGD) for one or several zoo networks, on random images.
/// </summary>
internal sealed class BenchCommand
{
    private readonly Option<string[]> _models = new("--model")
    {
        Description = "Networks of the zoo (several: --model resnet20 ce-resnet20)",
        Required = true,
        AllowMultipleArgumentsPerToken = true,
        HelpName = "name",
    };
    private readonly Option<int> _batch = new("--batch") { Description = "Images per batch", DefaultValueFactory = _ => 32 };
    private readonly Option<long[]?> _input = InputShapes.Option("Input shape CxHxW [default: each network's declared input]");
    private readonly Option<int> _iterations = new("--iterations") { Description = "Timed iterations of each measurement", DefaultValueFactory = _ => 20 };
    private readonly Option<int> _warmup = new("--warmup") { Description = "Untimed iterations before timing", DefaultValueFactory = _ => 3 };

    public static Command Create() => new BenchCommand().Build();

    private Command Build()
    {
        var command = new Command("bench", "Time evaluation and training steps (median ms, images/s) of zoo networks on random images.")
        {
            _models, _batch, _input, _iterations, _warmup,
        };
        _batch.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 2)
                r.AddError("--batch must be at least 2 (batch normalization needs batch statistics).");
        });
        _iterations.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() <= 0)
                r.AddError("--iterations must be positive.");
        });
        _warmup.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
                r.AddError("--warmup must be at least 1 (evaluation needs the running statistics of one training step).");
        });
        CommandAction.Set(command, Run);
        return command;
    }

    private int Run(ParseResult parse, CommandOutput output)
    {
        var entries = parse.GetValue(_models)!.Select(Models.Find).ToList();
        int batch = parse.GetValue(_batch), iterations = parse.GetValue(_iterations), warmup = parse.GetValue(_warmup);
        if (Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is null)
            output.Error.WriteLine("note: MALLOC_ARENA_MAX is not set; for numbers comparable with bench/run-ce-bench.sh run with MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 (glibc otherwise returns large activations to the kernel and times page faults).");
        var text = output.Output;
        text.WriteLine(Invariant($"batch {batch}, {iterations} timed iterations after {warmup} warm-up, {torch.get_num_threads()} threads"));
        string header = Invariant($"{"model",-22} {"input",-11} {"parameters",12} {"eval ms",9} {"eval img/s",11} {"train ms",9} {"train img/s",12}");
        text.WriteLine(header);
        text.WriteLine(new string('-', header.Length));
        foreach (var entry in entries)
        {
            var input = parse.GetValue(_input) is { Length: > 0 } given ? given : [.. entry.InputShape];
            torch.manual_seed(1);
            using var network = entry.Create(inChannels: input[0]);
            using var images = torch.randn([batch, .. input]);
            using var labels = torch.randint(entry.Classes, [batch], ScalarType.Int64);
            using var optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9);
            void TrainStep()
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                nn.functional.cross_entropy(network.call(images), labels).backward();
                optimizer.step();
            }
            void EvalStep()
            {
                using var scope = NewDisposeScope();
                using var noGrad = torch.no_grad();
                network.call(images);
            }
            double trainMs, evalMs;
            try
            {
                network.train();
                trainMs = Median(TrainStep, warmup, iterations);
                network.eval();
                evalMs = Median(EvalStep, warmup, iterations);
            }
            catch (ArgumentException e)
            {
                throw new UserException($"{entry.Name} with input {InputShapes.Format(input)}: {e.Message}", e);
            }
            long parameters = network.parameters().Sum(p => p.numel());
            text.WriteLine(Invariant($"{entry.Name,-22} {InputShapes.Format(input),-11} {parameters,12:N0} {evalMs,9:F2} {batch * 1000 / evalMs,11:F1} {trainMs,9:F2} {batch * 1000 / trainMs,12:F1}"));
        }
        return 0;
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
