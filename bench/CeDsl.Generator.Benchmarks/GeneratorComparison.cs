extern alias generator;

using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace CeDsl.Generator.Benchmarks;

/// <summary>
/// This generator against another build of it (for instance main's, built into another folder), in one
/// process on the same 50-network project, timed in alternation (ABBA order) so that a shared, busy machine
/// slows both alike: the median time and allocation of a cold run, of a run after an unrelated edit and of a
/// run after editing one network, and the median and quartiles of the per-round time ratios. Time is measured
/// twice: elapsed, and the CPU time the process spent (all its threads), which a busy machine inflates far
/// less than the elapsed time, since a descheduled process accrues none.
/// </summary>
internal static class GeneratorComparison
{
    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>
    /// Runs the comparison in a process without tiered compilation, this one if it already is. With tiering, each
    /// generator's code is recompiled in the background while it is timed, and the generator called first in a round
    /// of warm-up reaches its optimized code first: a build timed against a copy of itself came out 5 to 33 % faster
    /// (and allocated less, since only optimized code keeps some objects on the stack).
    /// </summary>
    /// <returns>The exit code.</returns>
    public static int RunWithoutTieredCompilation(string otherGenerator, int rounds, string? thisGenerator)
    {
        if (Environment.GetEnvironmentVariable(TieredCompilation) == "0")
        {
            Run(otherGenerator, rounds, thisGenerator);
            return 0;
        }
        var start = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
            start.ArgumentList.Add(typeof(GeneratorComparison).Assembly.Location);
        foreach (var argument in Environment.GetCommandLineArgs().Skip(1)) start.ArgumentList.Add(argument);
        start.Environment[TieredCompilation] = "0";
        using var process = Process.Start(start)!;
        process.WaitForExit();
        if (process.ExitCode != 0)
            Console.Error.WriteLine($"the comparison process (without tiered compilation) exited with code {process.ExitCode}");
        return process.ExitCode;
    }

    private const string TieredCompilation = "DOTNET_TieredCompilation";

    /// <param name="otherGenerator">The other build's CeDsl.Generator.dll.</param>
    /// <param name="rounds">Rounds of ABBA.</param>
    /// <param name="thisGenerator">Instead of this build, a third one's CeDsl.Generator.dll.</param>
    public static void Run(string otherGenerator, int rounds, string? thisGenerator = null)
    {
        var other = Load(otherGenerator);
        var current = thisGenerator is null ? new generator::CeDsl.Generator.CeDslGenerator() : Load(thisGenerator);
        var references = GeneratorCostBenchmarks.LoadReferences();
        var sources = GeneratorCostBenchmarks.Project.Sources();
        var trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"File{i}.cs")).ToArray();
        int networkTree = Array.FindIndex(sources, s => s.Contains("class Net0;", StringComparison.Ordinal));
        int unrelatedTree = sources.Length - 1;
        Compilation NewCompilation() =>
            CSharpCompilation.Create("Bench", trees, references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        GeneratorDriver NewDriver(IIncrementalGenerator generator) =>
            CSharpGeneratorDriver.Create(new[] { generator.AsSourceGenerator() }, parseOptions: ParseOptions,
                driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: false));

        var compilation = NewCompilation();
        int edits = 0;
        Compilation Edited(int tree, string text) =>
            compilation.ReplaceSyntaxTree(trees[tree], CSharpSyntaxTree.ParseText(text, ParseOptions, path: trees[tree].FilePath));
        // Each scenario prepares a run (untimed) and returns it: every warm driver is made afresh from the same
        // compilation just before its timed run. With one warm driver per generator kept for the whole comparison,
        // a build timed against a copy of itself came out 7 to 15 % faster in the warm scenarios.
        var scenarios = new (string Name, Func<IIncrementalGenerator, Func<GeneratorDriver>> Prepare)[]
        {
            ("cold: new compilation and driver", g =>
            {
                var fresh = NewCompilation();
                return () => NewDriver(g).RunGenerators(fresh);
            }),
            ("cached: unrelated file edited", g =>
            {
                var warm = NewDriver(g).RunGenerators(compilation);
                var edited = Edited(unrelatedTree, $"namespace Other; public static class Unrelated {{ public const int Edit = {++edits}; }}");
                return () => warm.RunGenerators(edited);
            }),
            ("one network edited", g =>
            {
                var warm = NewDriver(g).RunGenerators(compilation);
                var edited = Edited(networkTree, trees[networkTree].ToString().Replace("Classes = 10", $"Classes = {10 + (++edits % 7)}", StringComparison.Ordinal));
                return () => warm.RunGenerators(edited);
            }),
        };

        var generators = new[] { ("this build", (IIncrementalGenerator)current), ("other build", other) };
        for (int g = 0; g < 2; g++)
        {
            var result = NewDriver(generators[g].Item2).RunGenerators(compilation).GetRunResult();
            if (result.Diagnostics.Length > 0 || result.GeneratedTrees.Length != GeneratorCostBenchmarks.Project.Blocks + GeneratorCostBenchmarks.Project.Networks)
                throw new InvalidOperationException($"{generators[g].Item1}: the project must generate cleanly ({result.Diagnostics.Length} diagnostics, {result.GeneratedTrees.Length} files)");
            Console.WriteLine(FormattableString.Invariant($"{generators[g].Item1}: {result.GeneratedTrees.Sum(t => t.Length) / 1024} KiB of generated source in {result.GeneratedTrees.Length} files"));
        }
        Console.WriteLine($"{rounds} rounds, ABBA order, tiered compilation off");
        Console.WriteLine();
        Console.WriteLine("| scenario | time | this build (median) | other build (median) | this / other (median of rounds) | quartiles of the rounds' ratios | allocated, this / other (median) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (name, prepare) in scenarios)
        {
            for (int i = 0; i < 3; i++) foreach (var g in Enumerable.Range(0, 2)) prepare(generators[g].Item2)();
            var times = new[] { new List<double>(), new List<double>() };
            var cpuTimes = new[] { new List<double>(), new List<double>() };
            var bytes = new[] { new List<long>(), new List<long>() };
            var ratios = new List<double>();
            var cpuRatios = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                var order = round % 2 == 0 ? new[] { 0, 1, 1, 0 } : new[] { 1, 0, 0, 1 };
                var roundTimes = new double[2];
                var roundCpuTimes = new double[2];
                foreach (var g in order)
                {
                    var run = prepare(generators[g].Item2);
                    GC.Collect();
                    long before = GC.GetTotalAllocatedBytes(precise: true);
                    double cpuBefore = ProcessCpuMilliseconds();
                    var clock = Stopwatch.StartNew();
                    run();
                    double ms = clock.Elapsed.TotalMilliseconds;
                    double cpuMs = ProcessCpuMilliseconds() - cpuBefore;
                    bytes[g].Add(GC.GetTotalAllocatedBytes(precise: true) - before);
                    times[g].Add(ms);
                    cpuTimes[g].Add(cpuMs);
                    roundTimes[g] += ms;
                    roundCpuTimes[g] += cpuMs;
                }
                ratios.Add(roundTimes[0] / roundTimes[1]);
                cpuRatios.Add(roundCpuTimes[0] / roundCpuTimes[1]);
            }
            Console.WriteLine(FormattableString.Invariant(
                $"| {name} | elapsed | {Median(times[0]):F1} ms | {Median(times[1]):F1} ms | {Median(ratios):F3} | {Quantile(ratios, 0.25):F3} to {Quantile(ratios, 0.75):F3} | {Median(bytes[0]) / 1048576.0:F2} / {Median(bytes[1]) / 1048576.0:F2} MB |"));
            Console.WriteLine(FormattableString.Invariant(
                $"| | process CPU | {Median(cpuTimes[0]):F1} ms | {Median(cpuTimes[1]):F1} ms | {Median(cpuRatios):F3} | {Quantile(cpuRatios, 0.25):F3} to {Quantile(cpuRatios, 0.75):F3} | |"));
        }
    }

    /// <summary>The CPU time of this process so far (every thread), in milliseconds, to the nanosecond on Linux.</summary>
    private static double ProcessCpuMilliseconds()
    {
        if (!OperatingSystem.IsLinux())
            return Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
        if (clock_gettime(ClockProcessCpuTime, out var time) != 0)
            throw new InvalidOperationException("clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed: " + Marshal.GetLastPInvokeError());
        return time.Seconds * 1e3 + time.Nanoseconds / 1e6;
    }

    private const int ClockProcessCpuTime = 2; // CLOCK_PROCESS_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int clock_gettime(int clock, out TimeSpec time);

    private static double Median(List<double> values) => Quantile(values, 0.5);

    /// <summary>The <paramref name="q"/> quantile, interpolated between the two nearest ranks.</summary>
    private static double Quantile(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        double rank = q * (sorted.Count - 1);
        int below = (int)Math.Floor(rank);
        return below + 1 < sorted.Count ? sorted[below] + (rank - below) * (sorted[below + 1] - sorted[below]) : sorted[below];
    }

    private static double Median(List<long> values) => Median(values.Select(v => (double)v).ToList());

    /// <summary>The other build's generator, in a load context of its own that shares Roslyn with this one.</summary>
    private static IIncrementalGenerator Load(string path)
    {
        var context = new IsolatedGenerator(Path.GetFullPath(path));
        var assembly = context.LoadFromAssemblyPath(Path.GetFullPath(path));
        var type = assembly.GetType("CeDsl.Generator.CeDslGenerator", throwOnError: true)!;
        return (IIncrementalGenerator)Activator.CreateInstance(type)!;
    }

    private sealed class IsolatedGenerator(string path) : AssemblyLoadContext(nameof(IsolatedGenerator) + ":" + path)
    {
        protected override Assembly? Load(AssemblyName name) =>
            name.Name is { } simple && simple.StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal) ? null // Roslyn: the default context's
            : File.Exists(Path.Combine(Path.GetDirectoryName(path)!, name.Name + ".dll")) ? LoadFromAssemblyPath(Path.Combine(Path.GetDirectoryName(path)!, name.Name + ".dll"))
            : null;
    }
}
