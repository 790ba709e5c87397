using System.Text.RegularExpressions;
using CeDsl.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace CeDsl.Generator.Tests;

/// <summary>
/// Every C# block of docs/guide.md compiles with the generator running and no diagnostics; a block
/// tagged with a diagnostic ID (```csharp CEDSL004) reports exactly that one. Blocks without type
/// declarations are top-level statements: their usings are kept and their statements compiled as
/// one method body, with the implicit usings of an SDK project.
/// </summary>
public partial class GuideTests
{
    private static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CeDsl.sln"))) return directory.FullName;
        }
        throw new InvalidOperationException("CeDsl.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^```(?<tag>[a-z]+)(?: (?<expect>CEDSL\d{3}))?\n(?<code>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CodeBlock();

    public static IEnumerable<(string Tag, string? Expect, string Code)> Blocks()
    {
        var text = File.ReadAllText(Path.Combine(Root, "docs", "guide.md")).ReplaceLineEndings("\n");
        return CodeBlock().Matches(text).Select(m => (m.Groups["tag"].Value, m.Groups["expect"].Success ? m.Groups["expect"].Value : null, m.Groups["code"].Value));
    }

    public static TheoryData<int> CSharpBlocks() => [.. Blocks().Select((b, i) => (b, i)).Where(x => x.b.Tag == "csharp").Select(x => x.i)];

    private const string ImplicitUsings = "global using System;\nglobal using System.Collections.Generic;\nglobal using System.IO;\nglobal using System.Linq;\n";

    private static string AsCompilationUnit(string code)
    {
        if (Regex.IsMatch(code, @"\b(class|record|struct)\s+\w+")) return code;
        var lines = code.Split('\n');
        var usings = lines.TakeWhile(l => l.StartsWith("using ", StringComparison.Ordinal) && l.TrimEnd().EndsWith(';') && !l.Contains('(')).ToList();
        var body = string.Join("\n", lines.Skip(usings.Count));
        return string.Join("\n", usings) + "\n\ninternal static class GuideBlock\n{\n    public static void Run()\n    {\n" + body + "\n    }\n}\n";
    }

    [Theory]
    [MemberData(nameof(CSharpBlocks))]
    public void CSharpBlockCompiles(int index)
    {
        var (_, expect, code) = Blocks().ElementAt(index);
        var compilation = GeneratorHarness.Compilation(ImplicitUsings, AsCompilationUnit(code))
            .AddReferences(MetadataReference.CreateFromFile(typeof(CeDsl.Networks.Zoo).Assembly.Location),
                MetadataReference.CreateFromFile(typeof(CeDsl.Training.Trainer).Assembly.Location));
        var run = GeneratorHarness.Run(compilation);
        if (expect is null)
        {
            Assert.True(run.Diagnostics.IsEmpty, GeneratorRun.Format(run.Diagnostics));
            var problems = run.CompilerProblems();
            Assert.True(problems.Count == 0, "guide block " + index + ":\n" + GeneratorRun.Format(problems));
        }
        else
        {
            Assert.Equal([expect], run.Diagnostics.Select(d => d.Id));
        }
    }

    [Fact]
    public void TheGuideHasCodeOfEveryKindItPromises()
    {
        var tags = Blocks().Select(b => b.Tag).ToList();
        Assert.True(tags.Count(t => t == "csharp") >= 6, string.Join(", ", tags));
        Assert.Contains("sh", tags);
        Assert.Contains(Blocks(), b => b.Expect is not null);
    }

    [Fact]
    public void TheInstallBlockIsTheSamplesPackageReferences()
    {
        // The sample is restored from the packed packages and run by tests/CeDsl.Packaging.Tests.
        var install = Blocks().Single(b => b.Tag == "xml").Code;
        var sample = File.ReadAllText(Path.Combine(Root, "samples", "QuickStart", "QuickStart.csproj"));
        var references = Regex.Matches(install, "<PackageReference [^>]*/>").Select(m => m.Value).ToList();
        Assert.Equal(4, references.Count);
        Assert.All(references, reference => Assert.Contains(reference, sample));
    }
}
