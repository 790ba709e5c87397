using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using System.Reflection;
using System.Text;
using TorchSharp;
using CeDsl.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Xunit.Abstractions;

namespace CeDsl.Generator.Tests;

/// <summary>
/// Seeded random attribute sequences, mostly plausible and sometimes wrong: the generator never
/// throws, and every case either compiles (user source plus generated source, no errors) or carries
/// a CeDsl error diagnostic.
/// </summary>
public class RandomizedTests(ITestOutputHelper output)
{
    private const int Cases = 1200;
    private const int Networks = 50;

    [Fact]
    public void EveryCaseCompilesOrCarriesADiagnostic()
    {
        var clock = Stopwatch.StartNew();
        int compiled = 0, diagnosed = 0, withNetwork = 0;
        var failures = new List<string>();
        var histogram = new SortedDictionary<string, int>();
        for (int seed = 0; seed < Cases; seed++)
        {
            var source = new CaseWriter(new Random(seed)).Write(out bool hasNetwork);
            var run = GeneratorHarness.Run(source);
            var exceptions = run.Result.Results.Where(r => r.Exception is not null).Select(r => r.Exception!.ToString()).ToList();
            if (exceptions.Count > 0 || run.Diagnostics.Any(d => d.Id == "CEDSL020"))
            {
                failures.Add($"seed {seed}: generator failure{Environment.NewLine}{string.Join(Environment.NewLine, exceptions)}{GeneratorRun.Format(run.Diagnostics)}{Environment.NewLine}{source}");
                continue;
            }
            if (run.Diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error))
            {
                diagnosed++;
                foreach (var id in run.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.Id).Distinct())
                    histogram[id] = histogram.TryGetValue(id, out var n) ? n + 1 : 1;
                continue;
            }
            // Errors anywhere, or warnings in the generated code (it must be as clean as hand-written code).
            var problems = run.Output.GetDiagnostics()
                .Where(d => d.Severity == DiagnosticSeverity.Error || d.Severity == DiagnosticSeverity.Warning && d.Location.SourceTree?.FilePath.EndsWith(".g.cs", StringComparison.Ordinal) == true)
                .ToList();
            if (problems.Count > 0)
            {
                failures.Add($"seed {seed}: no CeDsl error, but the compilation reports:{Environment.NewLine}{GeneratorRun.Format(problems.Take(5))}{Environment.NewLine}{source}");
                continue;
            }
            compiled++;
            if (hasNetwork) withNetwork++;
        }
        output.WriteLine("Cases with each error: " + string.Join(", ", histogram.Select(h => $"{h.Key} {h.Value}")));
        output.WriteLine($"{Cases} cases in {clock.Elapsed.TotalSeconds:F1} s: {compiled} compiled ({withNetwork} with a network), {diagnosed} diagnosed.");
        Assert.True(failures.Count == 0, $"{failures.Count} failing cases; first:{Environment.NewLine}{string.Join(Environment.NewLine + Environment.NewLine, failures.Take(4))}");
        // Both outcomes must be common, or the cases do not exercise the generator.
        Assert.True(compiled > Cases / 5, $"only {compiled} cases compiled");
        Assert.True(withNetwork > Cases / 10, $"only {withNetwork} compiled cases had a network");
        Assert.True(diagnosed > Cases / 10, $"only {diagnosed} cases were diagnosed");
    }

    /// <summary>
    /// The generated networks of the random cases that compile run: a forward pass in training and
    /// in evaluation gives (N, classes), so the sizes the generator inferred are the ones TorchSharp computes.
    /// </summary>
    [Fact]
    public void GeneratedNetworksRunWithTheInferredShapes()
    {
        var clock = Stopwatch.StartNew();
        int ran = 0, degenerate = 0;
        TimeSpan emitTime = default, runTime = default;
        for (int seed = 0; seed < Cases && ran < Networks; seed++)
        {
            var source = new CaseWriter(new Random(seed)).Write(out bool hasNetwork);
            if (!hasNetwork) continue;
            var run = GeneratorHarness.Run(source);
            if (run.Diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error) || !run.HintNames.Contains("Demo.Net.g.cs")) continue;

            // Random expansions can compound to networks of gigabytes; those only cost memory.
            if (Regex.Matches(run.Source("Demo.Net.g.cs"), @"(?:inChannels: |nn\.Linear\()(\d+)").Any(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) > 128)) continue;

            var t0 = clock.Elapsed;
            using var image = new MemoryStream();
            var emitted = run.Output.Emit(image);
            Assert.True(emitted.Success, $"seed {seed}: {GeneratorRun.Format(emitted.Diagnostics)}");
            var type = Assembly.Load(image.ToArray()).GetType("Demo.Net")!;
            var constructor = type.GetConstructors().Single();
            var shape = (IReadOnlyList<long>)type.GetProperty("InputShape")!.GetValue(null)!;
            var classes = (long)(constructor.GetParameters().FirstOrDefault(p => p.Name == "classes")?.DefaultValue ?? -1L);

            emitTime += clock.Elapsed - t0;
            t0 = clock.Elapsed;
            torch.manual_seed(seed);
            using var network = (torch.nn.Module<torch.Tensor, torch.Tensor>)constructor.Invoke(constructor.GetParameters().Select(p => p.DefaultValue).ToArray());
            using var input = torch.randn(2, shape[0], shape[1], shape[2]);
            try
            {
                using (var output = network.call(input))
                {
                    Assert.Equal(2, output.dim());
                    Assert.Equal(2, output.shape[0]);
                    if (classes > 0) Assert.Equal(classes, output.shape[1]);
                }
                network.eval();
                using (torch.no_grad())
                using (var output = network.call(input))
                    Assert.Equal(2, output.shape[0]);
            }
            catch (ArgumentException exception) when (exception.Message.Contains("constant over H*W", StringComparison.Ordinal) || exception.Message.Contains("NaN or infinite", StringComparison.Ordinal))
            {
                // Deep random stacks of CE/AII can zero or blow up their activations, which CE refuses; not a size problem.
                degenerate++;
                continue;
            }
            catch (Exception exception) when (exception is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"seed {seed}: {exception.GetType().Name}: {exception.Message}{Environment.NewLine}{source}");
            }
            ran++;
            runTime += clock.Elapsed - t0;
        }
        output.WriteLine($"{ran} generated networks ran in {clock.Elapsed.TotalSeconds:F1} s (compiling and loading {emitTime.TotalSeconds:F1} s, running {runTime.TotalSeconds:F1} s) ({degenerate} more had a constant or non-finite CE input).");
        Assert.True(ran == Networks, $"only {ran} networks ran");
        Assert.True(degenerate < ran / 5, $"{degenerate} networks had degenerate CE inputs");
    }

    /// <summary>Writes one random case: a few blocks and usually a network using them.</summary>
    private sealed class CaseWriter(Random random)
    {
        private readonly StringBuilder text = new();

        private bool Chance(double p) => random.NextDouble() < p;

        private T Pick<T>(params T[] items) => items[random.Next(items.Length)];

        public string Write(out bool hasNetwork)
        {
            text.Append(Samples.Usings);
            int blocks = random.Next(1, 3);
            for (int i = 0; i < blocks; i++) WriteBlock("B" + i);
            hasNetwork = Chance(0.85);
            if (hasNetwork) WriteNetwork(blocks);
            return text.ToString();
        }

        private string Name(string fallback) => Chance(0.05) ? $"Name = \"{Pick("a", "b", "conv9", "x", "relu", "s.0", "0", "forward")}\"" : fallback;

        private static string Args(params string[] parts)
        {
            var present = parts.Where(p => p.Length > 0).ToList();
            return present.Count == 0 ? "" : "(" + string.Join(", ", present) + ")";
        }

        private string Conv(bool inBlock)
        {
            var args = new List<string> { Pick("1", "3", "3", "5", "7", Chance(0.1) ? "0" : "3") };
            if (Chance(0.3)) args.Add("Stride = " + (inBlock && Chance(0.6) ? "From.Parameter" : Pick("1", "2", Chance(0.05) ? "-3" : "2")));
            switch (random.Next(6))
            {
                case 0: args.Add("Out = " + Pick("4", "8", "16", "24", "32", "116")); break;
                case 1 when inBlock: args.Add("Expand = " + Pick("1", "2", "4")); break;
                case 2: args.Add("ExpandInput = " + Pick("1", "2", "6")); break;
                case 3: args.Add("Depthwise = true"); break;
                case 4: args.Add("Groups = " + Pick("1", "2", "4")); break;
            }
            if (!inBlock && !args.Any(a => a.StartsWith("Out", StringComparison.Ordinal)) && Chance(0.7)) args.Add("Out = " + Pick("8", "16", "32"));
            if (Chance(0.1)) args.Add("Padding = " + Pick("0", "1", "2"));
            if (Chance(0.1)) args.Add("Bias = true");
            if (Chance(0.05)) args.Add("In = " + Pick("3", "8", "16"));
            var name = Name("");
            if (name.Length > 0) args.Add(name);
            return "[Conv(" + string.Join(", ", args) + ")]";
        }

        private string Layer(bool inBlock)
        {
            // Mostly the motifs real networks use, so that many cases are valid.
            if (Chance(0.6))
            {
                var attention = Pick("", "", "[CE] ", "[CE(GroupSize = 8, R = 2)] ", "[BD] ", "[AII] ");
                return Conv(inBlock) + " [Norm" + Args(Chance(0.15) ? "Kind.GN, Groups = 4" : "") + "] " + attention + Pick("[ReLU]", "[ReLU]", "[ReLU6]");
            }
            switch (random.Next(Chance(0.5) ? 14 : 20))
            {
                case 0: case 1: case 2: case 3: return Conv(inBlock);
                case 4: case 5: case 6:
                    var kind = Pick("Kind.BN", "Kind.BN", "Kind.GN", "Kind.IN", "Kind.LN");
                    return "[Norm" + Args(kind, kind == "Kind.GN" ? "Groups = " + Pick("2", "4", "32") : "", Name("")) + "]";
                case 7: case 8: return "[ReLU" + Args(Name("")) + "]";
                case 9: return "[ReLU6]";
                case 10: return "[CE" + Args(Chance(0.5) ? "GroupSize = " + Pick("4", "8", "16", "64", "3") : "", Chance(0.3) ? "R = " + Pick("1", "2", "4", "16", "64") : "", Name("")) + "]";
                case 11: return Pick("[BD]", "[AII]", "[SE]", "[SE(R = 4)]", "[BD(GroupSize = 8)]", "[AII(R = 2)]");
                case 12: return "[MaxPool(" + Pick("2", "3") + Pick("", ", Stride = 2", ", Stride = 1", ", Padding = 1", ", Padding = 0") + ")]";
                case 13: return "[AvgPool(" + Pick("2", "3") + Pick("", ", Stride = 1", ", Padding = 1") + ")]";
                case 14: return Pick("[Dropout]", "[Dropout(0.2)]", "[Dropout(1.5)]");
                case 15: return Pick("[GlobalAvgPool]", "[Flatten]", "[Linear(8)]", "[Linear]");
                case 16: return "[Shuffle(" + Pick("2", "3", "4") + ")]";
                case 17: return "[Split] " + Conv(inBlock) + " [Norm] [ReLU] [Concat]";
                case 18: return "[Branch] " + Conv(inBlock) + " [Norm] [Branch] " + Conv(inBlock) + " [Norm] [ReLU] [Concat]";
                default: return Pick("[Concat]", "[Branch]", "[Seq(\"features\")]", "[Split]", "[Norm] [CE] [ReLU]");
            }
        }

        private void WriteBlock(string name)
        {
            var residual = Pick("None", "Identity", "Projection", "Projection", "IdentityIfSameShape");
            text.Append($"[Block(Residual = Shortcut.{residual}{(Chance(0.1) ? ", Init = Init.Default" : "")})]\n");
            int layers = random.Next(1, 8);
            bool add = residual != "None" && Chance(0.6);
            int addAt = random.Next(1, layers + 1);
            for (int i = 0; i < layers; i++)
            {
                if (add && i == addAt) text.Append("[Add] ");
                text.Append(Layer(inBlock: true)).Append(' ');
            }
            if (add && addAt >= layers) text.Append("[Add] [ReLU]");
            text.Append($"\npublic {(Chance(0.02) ? "" : "partial ")}class {name};\n\n");
        }

        private void WriteNetwork(int blocks)
        {
            var input = Chance(0.03) ? Pick("3x32", "0x8x8", "axbxc") : $"{Pick("1", "3")}x{Pick("8", "16", "32")}x{Pick("8", "16", "32")}";
            var placement = Pick("Explicit", "None", "Paper", "Paper");
            text.Append($"[Network(Input = \"{input}\", Classes = {Pick("10", "10", "3", Chance(0.1) ? "0" : "2")}, CE = Placement.{placement}{(Chance(0.3) ? ", CEBlocks = " + random.Next(1, 4) : "")})]\n");
            if (Chance(0.6))
            {
                text.Append(Chance(0.2) ? "[Stem(Name = \"features\")] " : "[Stem] ");
                text.Append($"[Conv(3, Out = {Pick("8", "16", "24")})] [Norm] [ReLU] ");
                if (Chance(0.4)) text.Append("[MaxPool(3, Stride = 2, Padding = 1)] ");
            }
            else
            {
                int layers = random.Next(0, 4);
                for (int i = 0; i < layers; i++) text.Append(Layer(inBlock: false)).Append(' ');
            }
            text.Append('\n');
            int stages = random.Next(0, 4);
            for (int i = 0; i < stages; i++)
            {
                var block = Chance(0.03) ? "string" : "B" + random.Next(blocks);
                var first = Chance(0.1) ? $", First = typeof(B{random.Next(blocks)})" : "";
                var name = Chance(0.1) ? ", Name = \"features\"" : "";
                text.Append($"[Stage(typeof({block}), Blocks = {random.Next(1, 4)}, Out = {Pick("4", "8", "16", "24", Chance(0.05) ? "0" : "32")}, Stride = {Pick("1", "2")}{first}{name})]\n");
            }
            if (Chance(0.3))
            {
                text.Append("[Head] ");
                text.Append(Pick("[GlobalAvgPool] [Flatten] [Linear]", "[GlobalAvgPool] [Flatten] [Dropout] [Linear]", "[Flatten] [Linear(16)] [ReLU] [Linear]", "[GlobalAvgPool] [Linear]", "[GlobalAvgPool] [Flatten] [Linear(7)]"));
            }
            text.Append("\npublic partial class Net;\n");
        }
    }
}
