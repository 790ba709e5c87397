using System.Text.Json;
using CeDsl.IO;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CeDsl.Python.Tests.LayerTwins;

/// <summary>
/// The PyTorch twins (python/cedsl_torch) equal the TorchSharp layers given the same state and inputs
/// (protocol in <see cref="LayerTwinRun"/>): the same state-dict names, shapes and element types, and every
/// output, input gradient, parameter gradient, running statistic after three training steps and evaluation
/// output within max |python - dotnet| &lt;= tolerance * max(1, max |dotnet|), tolerance 1e-10 in float64
/// and 1e-5 in float32.
/// </summary>
public sealed class LayerTwinTests(LayerTwinRun run, ITestOutputHelper output) : IClassFixture<LayerTwinRun>
{
    public static TheoryData<string> Cases => new(TwinCase.All.Select(c => c.Name));

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_python_twin_equals_the_TorchSharp_layer(string name)
    {
        var twin = TwinCase.All.Single(c => c.Name == name);
        using var scope = NewDisposeScope();
        var expected = SafeTensors.Load(run.CasePath(twin, "dotnet"));
        var actual = SafeTensors.Load(run.CasePath(twin, "python"));
        var pythonMetadata = SafeTensors.LoadMetadata(run.CasePath(twin, "python"));
        var caseMetadata = SafeTensors.LoadMetadata(run.CasePath(twin, "case"));

        Assert.Equal(Normalize(caseMetadata["state"]), Normalize(pythonMetadata["state"]));
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("eval.out", expected.Keys);
        if (twin.Trains)
            Assert.Contains("step1.grad_x", expected.Keys);

        double tolerance = twin.Type == ScalarType.Float64 ? 1e-10 : 1e-5;
        double worst = 0;
        foreach (var (key, reference) in expected.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var value = actual[key];
            Assert.True(reference.shape.SequenceEqual(value.shape), $"{name}: {key} is [{string.Join(", ", value.shape)}] in Python, [{string.Join(", ", reference.shape)}] in .NET");
            Assert.Equal(reference.dtype, value.dtype);
            double scale = Math.Max(1, reference.abs().max().to(ScalarType.Float64).item<double>());
            double difference = (value.to(ScalarType.Float64) - reference.to(ScalarType.Float64)).abs().max().item<double>() / scale;
            output.WriteLine($"{key,-32} {difference:E2}");
            worst = Math.Max(worst, difference);
            Assert.True(difference <= tolerance, $"{name}: {key} differs by {difference:E2} (relative to max(1, max |value|)), more than {tolerance:E0}");
        }
        output.WriteLine($"worst {worst:E2} over {expected.Count} tensors");
    }

    /// <summary>"name: dtype [shape]" lines of a state description written by either side.</summary>
    private static string[] Normalize(string stateJson) =>
        JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(stateJson)!
            .Select(kv => $"{kv.Key}: {kv.Value[0].GetString()} [{string.Join(", ", kv.Value[1].EnumerateArray().Select(d => d.GetInt64()))}]")
            .Order(StringComparer.Ordinal).ToArray();
}
