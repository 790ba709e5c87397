extern alias generator;

using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace CeDsl.Generator.Benchmarks;

/// <summary>
/// This generator against another build of it (for instance main's, built into another folder), in one
/// process on the same 50-network project, timed in alternation (ABBA order) so that a shared, busy machine
/// slows both alike: the median time and allocation of a cold run, of a run after an unrelated edit and of a
/// run after editing one network, and the median of the per-round time ratios.
/// </summary>
internal static class GeneratorComparison
{
    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

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
        var scenarios = new (string Name, Func<IIncrementalGenerator, GeneratorDriver, GeneratorDriver> Run)[]
        {
            ("cold: new compilation and driver", (g, _) => NewDriver(g).RunGenerators(NewCompilation())),
            ("cached: unrelated file edited", (_, warm) => warm.RunGenerators(compilation.ReplaceSyntaxTree(trees[unrelatedTree],
                CSharpSyntaxTree.ParseText($"namespace Other; public static class Unrelated {{ public const int Edit = {++edits}; }}", ParseOptions, path: trees[unrelatedTree].FilePath)))),
            ("one network edited", (_, warm) => warm.RunGenerators(compilation.ReplaceSyntaxTree(trees[networkTree],
                CSharpSyntaxTree.ParseText(trees[networkTree].ToString().Replace("Classes = 10", $"Classes = {10 + (++edits % 7)}", StringComparison.Ordinal), ParseOptions, path: trees[networkTree].FilePath)))),
        };

        var generators = new[] { ("this build", (IIncrementalGenerator)current), ("other build", other) };
        var warm = generators.Select(g => NewDriver(g.Item2).RunGenerators(compilation)).ToArray();
        for (int g = 0; g < 2; g++)
        {
            var result = warm[g].GetRunResult();
            if (result.Diagnostics.Length > 0 || result.GeneratedTrees.Length != GeneratorCostBenchmarks.Project.Blocks + GeneratorCostBenchmarks.Project.Networks)
                throw new InvalidOperationException($"{generators[g].Item1}: the project must generate cleanly ({result.Diagnostics.Length} diagnostics, {result.GeneratedTrees.Length} files)");
            Console.WriteLine(FormattableString.Invariant($"{generators[g].Item1}: {result.GeneratedTrees.Sum(t => t.Length) / 1024} KiB of generated source in {result.GeneratedTrees.Length} files"));
        }
        Console.WriteLine($"{rounds} rounds, ABBA order");
        Console.WriteLine();
        Console.WriteLine("| scenario | this build (median) | other build (median) | this / other (median of rounds) | allocated, this / other |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var (name, run) in scenarios)
        {
            for (int i = 0; i < 3; i++) foreach (var g in Enumerable.Range(0, 2)) run(generators[g].Item2, warm[g]);
            var times = new[] { new List<double>(), new List<double>() };
            var bytes = new[] { new List<long>(), new List<long>() };
            var ratios = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                var order = round % 2 == 0 ? new[] { 0, 1, 1, 0 } : new[] { 1, 0, 0, 1 };
                var roundTimes = new double[2];
                foreach (var g in order)
                {
                    GC.Collect();
                    long before = GC.GetTotalAllocatedBytes(precise: true);
                    var clock = Stopwatch.StartNew();
                    run(generators[g].Item2, warm[g]);
                    double ms = clock.Elapsed.TotalMilliseconds;
                    bytes[g].Add(GC.GetTotalAllocatedBytes(precise: true) - before);
                    times[g].Add(ms);
                    roundTimes[g] += ms;
                }
                ratios.Add(roundTimes[0] / roundTimes[1]);
            }
            Console.WriteLine(FormattableString.Invariant(
                $"| {name} | {Median(times[0]):F1} ms | {Median(times[1]):F1} ms | {Median(ratios):F3} | {Median(bytes[0]) / 1048576.0:F2} / {Median(bytes[1]) / 1048576.0:F2} MB |"));
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
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
