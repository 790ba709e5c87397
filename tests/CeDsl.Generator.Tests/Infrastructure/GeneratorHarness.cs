extern alias generator;

using generator::CeDsl.Generator;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace CeDsl.Generator.Tests.Infrastructure;

/// <summary>Runs the generator on in-memory sources against the real runtime and TorchSharp references.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    public static readonly CSharpCompilationOptions CompilationOptions = new(
        OutputKind.DynamicallyLinkedLibrary,
        nullableContextOptions: NullableContextOptions.Enable,
        concurrentBuild: false);

    private static readonly Lazy<CSharpCompilation> Empty = new(() =>
    {
        var framework = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll");
        var references = framework
            .Append(typeof(TorchSharp.torch).Assembly.Location)
            .Append(typeof(CeDsl.BlockAttribute).Assembly.Location)
            .Distinct()
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToArray();
        return CSharpCompilation.Create("CeDslTests", Array.Empty<SyntaxTree>(), references, CompilationOptions);
    });

    /// <summary>A compilation of the sources (files Source0.cs, Source1.cs, ...), sharing the loaded references.</summary>
    public static CSharpCompilation Compilation(params string[] sources) =>
        Empty.Value.AddSyntaxTrees(sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Source{i}.cs")));

    public static GeneratorDriver Driver(IIncrementalGenerator? generator = null) =>
        CSharpGeneratorDriver.Create(
            new[] { (generator ?? new CeDslGenerator()).AsSourceGenerator() },
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(string source, IIncrementalGenerator? generator = null) => Run(Compilation(source), generator);

    /// <summary>
    /// Runs the generator on the sample usings plus <paramref name="declarations"/>, asserts that it reports
    /// nothing and that the result compiles warning-free, and returns the generated source of the trained
    /// class <c>Demo.<paramref name="type"/></c> (without its nested Folded class).
    /// </summary>
    public static string GenerateClean(string declarations, string type)
    {
        var run = Run(Samples.Usings + declarations);
        Assert.Empty(run.Diagnostics);
        Assert.Empty(run.CompilerProblems());
        return run.TrainedSource($"Demo.{type}.g.cs");
    }

    public static GeneratorRun Run(Compilation compilation, IIncrementalGenerator? generator = null)
    {
        var driver = Driver(generator).RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        return new GeneratorRun(driver, driver.GetRunResult(), output, diagnostics);
    }
}

internal sealed record GeneratorRun(GeneratorDriver Driver, GeneratorDriverRunResult Result, Compilation Output, ImmutableArray<Diagnostic> Diagnostics)
{
    public IEnumerable<Diagnostic> CeDsl => Diagnostics.Where(d => d.Id.StartsWith("CEDSL", StringComparison.Ordinal));

    public string Source(string hintName) =>
        Result.Results.SelectMany(r => r.GeneratedSources).Single(s => s.HintName == hintName).SourceText.ToString();

    /// <summary>The generated source of the trained class only: up to the documentation of its Fold method, without the nested Folded class.</summary>
    public string TrainedSource(string hintName)
    {
        var source = Source(hintName);
        return source.Substring(0, source.IndexOf("/// Folds this trained", StringComparison.Ordinal));
    }

    public IEnumerable<string> HintNames => Result.Results.SelectMany(r => r.GeneratedSources).Select(s => s.HintName);

    /// <summary>Compiler diagnostics of the user source plus the generated source (warnings and errors).</summary>
    public IReadOnlyList<Diagnostic> CompilerProblems() =>
        Output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();

    public static string Format(IEnumerable<Diagnostic> diagnostics) =>
        string.Join(Environment.NewLine, diagnostics.Select(d => d.ToString()));
}
