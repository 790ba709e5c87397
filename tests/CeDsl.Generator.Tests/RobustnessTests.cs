extern alias generator;

using generator::CeDsl.Generator;
using System.Globalization;
using CeDsl.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace CeDsl.Generator.Tests;

/// <summary>The generator never throws: an unexpected exception in any stage becomes CEDSL020.</summary>
public class RobustnessTests
{
    private const string Source = """
        [Block]
        [Conv(3)] [Norm] [ReLU]
        public partial class Faulty;

        [Block]
        [Conv(1)] [Norm] [ReLU]
        public partial class Healthy;

        """;

    [Theory]
    [InlineData("parse", true)]
    [InlineData("validate", true)]
    [InlineData("emit", false)]
    public void AnExceptionInAStageBecomesAnInternalErrorDiagnostic(string stage, bool located)
    {
        // The fault hits the first class the stage processes; the other class must still be generated.
        int calls = 0;
        var generator = new CeDslGenerator(s =>
        {
            if (s == stage && calls++ == 0) throw new InvalidOperationException("injected fault");
        });
        var source = Samples.Usings + Source;
        var run = GeneratorHarness.Run(source, generator);

        Assert.All(run.Result.Results, r => Assert.Null(r.Exception));
        var diagnostic = Assert.Single(run.Diagnostics);
        Assert.Equal("CEDSL020", diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        var failed = diagnostic.GetMessage(CultureInfo.InvariantCulture).Contains("'Faulty'") ? "Faulty" : "Healthy";
        Assert.Equal($"The CeDsl generator failed on '{failed}' (InvalidOperationException: injected fault); no code was generated for it. Please report this.",
            diagnostic.GetMessage(CultureInfo.InvariantCulture));
        if (located)
        {
            var line = diagnostic.Location.GetLineSpan().StartLinePosition.Line;
            Assert.Equal($"[Block]", source.Split('\n')[line].Trim());
        }
        else
        {
            Assert.Equal(Location.None, diagnostic.Location);
        }
        var survivor = failed == "Faulty" ? "Healthy" : "Faulty";
        Assert.Equal(new[] { $"Demo.{survivor}.g.cs" }, run.HintNames);
    }
}
