using System.Globalization;
using CeDsl.Training.Benchmarks;
using static TorchSharp.torch;

// CE's training cost: zoo networks with and without CE, timed side by side in one process, and the floor
// of CE's cost derived from measured primitives (docs/benchmarks/ce-training.md).
//   dotnet run -c Release --project bench/CeDsl.Training.Benchmarks -- [options]    (bench/run-training-bench.sh sets the allocator)
// Options:
//   --cases resnet20:16:train,resnet20:16:eval,resnet20:128:train,resnet18:16:train,resnet50:16:train
//                     family:batch:mode, each timed as the BN network, the CE network, and with --operators the
//                     CE network on libtorch's operators only (the trainable CE before the CPU kernels)
//   --runs 5          runs per case; a run times every variant (in rotation) for --iterations steps, median
//   --iterations 5    timed steps per variant and run
//   --threads 2       libtorch's intra-op threads
//   --operators       also time CE on libtorch's operators only
//   --floor           derive CE's floor for each case's CE network (train: forward + backward, eval: forward)
//   --markdown FILE   also write the tables to FILE
//   --kernels         instead: the rates of CE's block kernels on one thread
//   --layers          instead: the floor of the CE layer benchmark's training step at its shapes, beside BN and BN+CE
//                     timed in turn (--runs, --iterations, --threads apply)
var options = Options.Parse(args);
if (options.Kernels)
{
    var rates = KernelRates.Measure();
    Print(rates);
    if (options.Markdown is { } file)
        File.WriteAllLines(file, rates);
    return;
}
set_num_threads(options.Threads);
if (options.Layers)
{
    var floors = CeFloor.DeriveLayers(options);
    Print(floors);
    if (options.Markdown is { } file)
        File.WriteAllLines(file, floors);
    return;
}
var invariant = CultureInfo.InvariantCulture;
var lines = new List<string>
{
    string.Create(invariant, $"{options.Threads} threads, {options.Runs} runs x {options.Iterations} steps per variant, after warm-up steps until no fresh pages; ") +
    $"MALLOC_ARENA_MAX={Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") ?? "unset"}; load average before: {LoadAverage()}.",
    "",
};
Print(lines);

var steps = new List<StepResult>();
foreach (var benchCase in options.Cases)
{
    var result = NetworkSteps.Measure(benchCase, options);
    steps.Add(result);
    Print(result.Describe());
}
var table = NetworkSteps.Table(steps);
lines.AddRange(table);
Print(["", .. table]);

if (options.Floor)
{
    foreach (var result in steps)
    {
        var floor = CeFloor.Derive(result, options);
        lines.AddRange(floor);
        Print(floor);
    }
}
lines.Add("");
lines.Add($"Load average after: {LoadAverage()}.");
Console.WriteLine(lines[^1]);
if (options.Markdown is { } path)
{
    File.WriteAllLines(path, lines);
    Console.WriteLine($"tables written to {path}");
}

static void Print(IEnumerable<string> text)
{
    foreach (var line in text)
        Console.WriteLine(line);
}

static string LoadAverage() =>
    File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
