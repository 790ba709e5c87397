using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// Usage: CeDsl.Generator.Benchmarks [BenchmarkDotNet args], e.g. --filter '*GeneratorCost*';
//        CeDsl.Generator.Benchmarks ratio [rounds]: generated vs hand-written block, interleaved;
//        CeDsl.Generator.Benchmarks first-run: the generator's first run in a fresh process (JIT included);
//        CeDsl.Generator.Benchmarks compare <other CeDsl.Generator.dll> [rounds] [instead of this build, a CeDsl.Generator.dll]:
//        this generator against another build, interleaved (in a process without tiered compilation).
if (args.Length > 1 && args[0] == "compare")
{
    Environment.ExitCode = CeDsl.Generator.Benchmarks.GeneratorComparison.RunWithoutTieredCompilation(args[1],
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 20, args.Length > 3 ? args[3] : null);
    return;
}
if (args.Length > 0 && args[0] == "first-run")
{
    CeDsl.Generator.Benchmarks.GeneratorCostBenchmarks.FirstRunInProcess();
    return;
}
if (args.Length > 0 && args[0] == "ratio")
{
    CeDsl.Generator.Benchmarks.InterleavedRatio.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 30);
    return;
}

// In-process: the block benchmarks need the native libtorch the build placed (and patched) next to us.
var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
    .WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(10);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly)
    .Run(args, ManualConfig.Create(DefaultConfig.Instance).AddJob(job));
