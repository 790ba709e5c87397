extern alias generator;

using generator::CeDsl.Generator;
using System.Collections;
using System.Reflection;
using CeDsl.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace CeDsl.Generator.Tests;

/// <summary>The pipeline is incremental: unrelated edits reuse every step, and no step holds Roslyn objects.</summary>
public class IncrementalTests
{
    private static readonly string[] TrackedSteps =
    {
        TrackingNames.BlockDeclarations, TrackingNames.BlockResults, TrackingNames.BlockPlans, TrackingNames.BlockDiagnostics,
        TrackingNames.NetworkDeclarations, TrackingNames.NetworkResults, TrackingNames.NetworkPlans, TrackingNames.NetworkDiagnostics,
    };

    private static readonly string Declarations = Samples.Usings + Samples.BasicBlock + Samples.CeBottleneck + Samples.InvertedResidual
        + Samples.ShuffleUnits + Samples.CifarResNet + Samples.SmallVgg;

    private static (GeneratorDriver Driver, Compilation Compilation) FirstRun(params string[] sources)
    {
        var compilation = GeneratorHarness.Compilation(sources);
        var driver = GeneratorHarness.Driver().RunGenerators(compilation);
        var first = driver.GetRunResult().Results.Single();
        foreach (var name in TrackedSteps)
            Assert.True(first.TrackedSteps.ContainsKey(name), $"step {name} was not tracked");
        Assert.Equal(7, first.GeneratedSources.Length);
        return (driver, compilation);
    }

    private static SyntaxTree Parse(string text, string path) => CSharpSyntaxTree.ParseText(text, GeneratorHarness.ParseOptions, path: path);

    [Fact]
    public void AnUnrelatedEditLeavesEveryStepCachedOrUnchanged()
    {
        var (driver, compilation) = FirstRun(Declarations, "namespace Other; public class Unrelated { public int A => 1; }");
        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.ElementAt(1),
            Parse("namespace Other; public class Unrelated { public int A => 2; public int B => 3; }", "Source1.cs"))
            .AddSyntaxTrees(Parse("namespace Other; public class Added { }", "Source2.cs"));

        var second = driver.RunGenerators(edited).GetRunResult().Results.Single();

        foreach (var name in TrackedSteps)
        {
            foreach (var step in second.TrackedSteps[name])
            {
                foreach (var (_, reason) in step.Outputs)
                    Assert.True(reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{name}: {reason}");
            }
        }
        foreach (var output in second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs))
            Assert.Equal(IncrementalStepRunReason.Cached, output.Reason);
    }

    [Fact]
    public void AnEditThatOnlyMovesADiagnosticKeepsTheGeneratedSourceCached()
    {
        // CE not before an activation: a warning whose location moves when a line is inserted above.
        const string block = "[Block]\n[Conv(3)] [Norm] [CE] [Conv(1)] [Norm] [ReLU]\npublic partial class Warned;\n";
        var (driver, compilation) = (GeneratorHarness.Driver(), GeneratorHarness.Compilation(Samples.Usings + block));
        driver = driver.RunGenerators(compilation);
        var firstWarning = driver.GetRunResult().Diagnostics.Single();

        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Single(), Parse(Samples.Usings + "\n\n" + block, "Source0.cs"));
        var run = driver.RunGenerators(edited).GetRunResult();
        var second = run.Results.Single();

        Assert.Equal(firstWarning.Location.GetLineSpan().StartLinePosition.Line + 2, run.Diagnostics.Single().Location.GetLineSpan().StartLinePosition.Line);
        Assert.Contains(second.TrackedSteps[TrackingNames.BlockDiagnostics].SelectMany(s => s.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.All(second.TrackedSteps[TrackingNames.BlockPlans].SelectMany(s => s.Outputs), o => Assert.Equal(IncrementalStepRunReason.Unchanged, o.Reason));
        // Both the source and the diagnostics are "SourceOutput" steps; tell them apart by their input.
        var outputs = second.TrackedOutputSteps["SourceOutput"];
        var sourceOutput = Assert.Single(outputs, s => s.Inputs.Any(i => i.Source.Name == TrackingNames.BlockPlans));
        Assert.All(sourceOutput.Outputs, o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
        var diagnosticsOutput = Assert.Single(outputs, s => s.Inputs.Any(i => i.Source.Name == TrackingNames.BlockDiagnostics));
        Assert.All(diagnosticsOutput.Outputs, o => Assert.Equal(IncrementalStepRunReason.Modified, o.Reason));
    }

    [Fact]
    public void EditingABlockRegeneratesTheNetworksThatUseIt()
    {
        var (driver, compilation) = FirstRun(Declarations);
        var changed = Declarations.Replace("[Conv(3)] [Norm(Kind.BN)]\n[Add] [ReLU]\npublic partial class BasicBlock;",
            "[Conv(3)] [Norm(Kind.GN, Groups = 8)]\n[Add] [ReLU]\npublic partial class BasicBlock;");
        Assert.NotEqual(Declarations, changed);
        var run = driver.RunGenerators(compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Single(), Parse(changed, "Source0.cs"))).GetRunResult();
        var network = run.Results.Single().GeneratedSources.Single(s => s.HintName == "Demo.CifarResNet.g.cs").SourceText.ToString();
        Assert.Contains("new BasicBlock(", network);
        var block = run.Results.Single().GeneratedSources.Single(s => s.HintName == "Demo.BasicBlock.g.cs").SourceText.ToString();
        Assert.Contains("nn.GroupNorm(8, width", block);
        // The network's plan depends on the block's (its CE placement and sizes), so its step ran again.
        Assert.Contains(run.Results.Single().TrackedSteps[TrackingNames.NetworkDeclarations].SelectMany(s => s.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
    }

    [Fact]
    public void PipelineOutputsHoldNoSymbolsSyntaxCompilationsOrLocations()
    {
        var (driver, _) = FirstRun(Declarations);
        var result = driver.GetRunResult().Results.Single();
        int visited = 0;
        foreach (var name in TrackedSteps)
        {
            foreach (var step in result.TrackedSteps[name])
            {
                foreach (var (value, _) in step.Outputs)
                    visited += AssertPlainValues(value, name, new HashSet<object>(ReferenceEqualityComparer.Instance));
            }
        }
        Assert.True(visited > 1000, $"only {visited} objects visited");
    }

    private static readonly Type[] Forbidden =
    {
        typeof(ISymbol), typeof(SyntaxNode), typeof(SyntaxTree), typeof(Compilation), typeof(SemanticModel), typeof(Location), typeof(Diagnostic),
    };

    /// <summary>Walks every field of the object graph; returns the number of objects visited.</summary>
    private static int AssertPlainValues(object? value, string path, HashSet<object> seen)
    {
        if (value is null) return 0;
        var type = value.GetType();
        foreach (var forbidden in Forbidden)
            Assert.False(forbidden.IsAssignableFrom(type), $"{path} holds a {forbidden.Name} ({type.FullName})");
        if (type.IsPrimitive || type.IsEnum || value is string || value is decimal) return 1;
        if (!type.IsValueType && !seen.Add(value)) return 0;

        int count = 1;
        if (value is IEnumerable items and not string)
        {
            int i = 0;
            foreach (var item in items) count += AssertPlainValues(item, $"{path}[{i++}]", seen);
        }
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            foreach (var field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (field.FieldType.IsPointer) continue;
                count += AssertPlainValues(field.GetValue(value), path + "." + field.Name, seen);
            }
        }
        return count;
    }
}
