extern alias generator;

using System.Text;
using BenchmarkDotNet.Attributes;
using generator::CeDsl.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace CeDsl.Generator.Benchmarks;

/// <summary>
/// What the generator costs a project of 50 networks (and the 10 blocks they use), one file per
/// class: a cold run (new compilation, new driver), a run after an unrelated edit (everything
/// cached) and a run after editing one network (that network re-validated and re-emitted).
/// </summary>
[MemoryDiagnoser]
public class GeneratorCostBenchmarks
{
    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);
    private MetadataReference[] references = [];
    private SyntaxTree[] trees = [];
    private Compilation compilation = null!;
    private GeneratorDriver warmDriver = null!;
    private int networkTree;
    private int unrelatedTree;
    private int edits;

    [GlobalSetup]
    public void Setup()
    {
        references = LoadReferences();
        var sources = Project.Sources();
        trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"File{i}.cs")).ToArray();
        networkTree = Array.FindIndex(sources, s => s.Contains("class Net0;", StringComparison.Ordinal));
        unrelatedTree = sources.Length - 1;
        compilation = NewCompilation();

        warmDriver = NewDriver().RunGenerators(compilation);
        var result = warmDriver.GetRunResult();
        if (result.Diagnostics.Length > 0 || result.GeneratedTrees.Length != Project.Blocks + Project.Networks)
            throw new InvalidOperationException($"the benchmark project must generate cleanly: {result.Diagnostics.Length} diagnostics, {result.GeneratedTrees.Length} files");
    }

    private Compilation NewCompilation() =>
        CSharpCompilation.Create("Bench", trees, references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    private static GeneratorDriver NewDriver() =>
        CSharpGeneratorDriver.Create(new[] { new CeDslGenerator().AsSourceGenerator() }, parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: false));

    /// <summary>
    /// The first run in a fresh process (what a command-line build pays, JIT included), then one
    /// run after an unrelated edit, timed with a stopwatch.
    /// </summary>
    public static void FirstRunInProcess()
    {
        var benchmark = new GeneratorCostBenchmarks();
        var setup = System.Diagnostics.Stopwatch.StartNew();
        benchmark.references = LoadReferences();
        var sources = Project.Sources();
        benchmark.trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"File{i}.cs")).ToArray();
        benchmark.unrelatedTree = sources.Length - 1;
        benchmark.compilation = benchmark.NewCompilation();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        benchmark.warmDriver = NewDriver().RunGenerators(benchmark.compilation);
        var first = clock.Elapsed.TotalMilliseconds;
        var generated = benchmark.warmDriver.GetRunResult().GeneratedTrees.Length;
        clock.Restart();
        benchmark.UnrelatedEdit();
        var second = clock.Elapsed.TotalMilliseconds;
        Console.WriteLine(FormattableString.Invariant($"first run in this process: {first:F0} ms ({generated} files); after an unrelated edit: {second:F1} ms"));
    }

    internal static MetadataReference[] LoadReferences()
    {
        var framework = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll");
        return framework.Append(typeof(TorchSharp.torch).Assembly.Location).Append(typeof(CeDsl.BlockAttribute).Assembly.Location)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToArray();
    }

    [Benchmark(Description = "cold: new compilation and driver")]
    public GeneratorDriver Cold() => NewDriver().RunGenerators(NewCompilation());

    [Benchmark(Description = "cached: unrelated file edited")]
    public GeneratorDriver UnrelatedEdit()
    {
        var edited = compilation.ReplaceSyntaxTree(trees[unrelatedTree],
            CSharpSyntaxTree.ParseText($"namespace Other; public static class Unrelated {{ public const int Edit = {++edits}; }}", ParseOptions, path: trees[unrelatedTree].FilePath));
        return warmDriver.RunGenerators(edited);
    }

    [Benchmark(Description = "one network edited")]
    public GeneratorDriver NetworkEdit()
    {
        var text = trees[networkTree].ToString().Replace("Classes = 10", $"Classes = {10 + (++edits % 7)}", StringComparison.Ordinal);
        var edited = compilation.ReplaceSyntaxTree(trees[networkTree], CSharpSyntaxTree.ParseText(text, ParseOptions, path: trees[networkTree].FilePath));
        return warmDriver.RunGenerators(edited);
    }

    /// <summary>The benchmark project: 10 blocks and 50 networks of ResNet, MobileNetV2, ShuffleNetV2 and VGG shapes.</summary>
    internal static class Project
    {
        public const int Blocks = 10;
        public const int Networks = 50;

        private static readonly string[] BlockBodies =
        [
            "[Block(Residual = Shortcut.Projection)]\n[Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [Add] [ReLU]",
            "[Block(Residual = Shortcut.Projection)]\n[Conv(1)] [Norm] [ReLU] [Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(1, Expand = 4)] [Norm] [Add] [ReLU]",
            "[Block(Residual = Shortcut.Projection)]\n[Conv(1)] [Norm] [ReLU] [Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(1, Expand = 4)] [Norm] [CE] [Add] [ReLU]",
            "[Block(Residual = Shortcut.Projection)]\n[Conv(1)] [Norm] [ReLU] [Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(1, Expand = 4)] [Norm] [SE] [Add] [ReLU]",
            "[Block(Residual = Shortcut.IdentityIfSameShape)]\n[Seq(\"conv\")] [Conv(1, ExpandInput = 6, Name = \"0.0\")] [Norm(Name = \"0.1\")] [ReLU6(Name = \"0.2\")] [Conv(3, Depthwise = true, Stride = From.Parameter, Name = \"1.0\")] [Norm(Name = \"1.1\")] [ReLU6(Name = \"1.2\")] [Conv(1)] [Norm]",
            "[Block]\n[Branch(\"branch1\")] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU] [Branch(\"branch2\")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true, Stride = From.Parameter)] [Norm] [Conv(1)] [Norm] [ReLU] [Concat] [Shuffle(2)]",
            "[Block]\n[Split] [Branch(\"branch2\")] [Conv(1)] [Norm] [ReLU] [Conv(3, Depthwise = true)] [Norm] [Conv(1)] [Norm] [ReLU] [Concat] [Shuffle(2)]",
            "[Block]\n[Conv(3, Stride = From.Parameter)] [Norm] [ReLU] [Conv(3)] [Norm] [ReLU]",
            "[Block(Residual = Shortcut.Projection)]\n[Conv(3, Stride = From.Parameter)] [Norm(Kind.GN, Groups = 8)] [ReLU] [Conv(3)] [Norm(Kind.GN, Groups = 8)] [CE] [Add] [ReLU]",
            "[Block(Residual = Shortcut.Identity)]\n[Conv(3)] [Norm] [ReLU] [Conv(3)] [Norm] [BD] [Add] [ReLU]",
        ];

        public static string[] Sources()
        {
            var files = new List<string>();
            for (int b = 0; b < Blocks; b++)
                files.Add($"using CeDsl;\nnamespace Bench;\n{BlockBodies[b]}\npublic partial class B{b};\n");
            var placements = new[] { "Explicit", "None", "Paper" };
            for (int n = 0; n < Networks; n++)
            {
                var text = new StringBuilder("using CeDsl;\nnamespace Bench;\n");
                int block = n % Blocks;
                var (first, others) = block switch { 5 => (5, 6), 6 => (5, 6), 9 => (0, 9), _ => (block, block) };
                text.Append($"[Network(Input = \"3x{(n % 2 == 0 ? 32 : 64)}x{(n % 2 == 0 ? 32 : 64)}\", Classes = 10, CE = Placement.{placements[n % 3]})]\n");
                text.Append("[Stem] [Conv(3, Out = 32)] [Norm] [ReLU]\n");
                int[] widths = first == 5 ? [32, 64, 128] : [32, 64, 64];
                for (int s = 0; s < 3; s++)
                {
                    var firstType = first != others ? $", First = typeof(B{first})" : "";
                    text.Append($"[Stage(typeof(B{others}){firstType}, Blocks = {1 + (n + s) % 3}, Out = {widths[s]}, Stride = {(s == 0 && others != 9 ? 1 : 2)})]\n");
                }
                text.Append($"public partial class Net{n};\n");
                files.Add(text.ToString());
            }
            files.Add("namespace Other; public static class Unrelated { public const int Edit = 0; }");
            return files.ToArray();
        }
    }
}
