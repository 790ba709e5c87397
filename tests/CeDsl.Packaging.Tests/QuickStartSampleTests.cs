using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace CeDsl.Packaging.Tests;

/// <summary>samples/QuickStart restored from the packed packages in a clean folder: it builds, trains, saves, and its deliberate mistake is diagnosed.</summary>
[Collection(PackagingCollection.Name)]
public sealed partial class QuickStartSampleTests(PackagedSample packaged)
{
    [Fact]
    public void Sample_builds_from_the_packed_packages_without_a_diagnostic()
    {
        var build = packaged.Sample.Build;
        Assert.True(build.ExitCode == 0, build.Describe());
        Assert.DoesNotContain("CEDSL", build.Output);
        // Restored from the feed, not from a project reference or an older cached package.
        string assets = File.ReadAllText(Path.Combine(packaged.Sample.Directory, "obj", "project.assets.json"));
        Assert.Contains($"\"CeDsl/{packaged.Version}\"", assets);
        Assert.Contains($"\"CeDsl.Training/{packaged.Version}\"", assets);
        Assert.Contains($"\"CeDsl.Networks/{packaged.Version}\"", assets);
        Assert.DoesNotContain("\"type\": \"project\"", assets);
    }

    [Fact]
    public void Sample_trains_saves_a_checkpoint_and_reloads_it()
    {
        var sample = packaged.Sample;
        Assert.True(sample.Build.ExitCode == 0, sample.Build.Describe());
        string checkpoint = Path.Combine(packaged.WorkDirectory, "run", "tinyresnet.ckpt");

        var run = DotNet.Run(sample.Directory, TimeSpan.FromMinutes(5), sample.Assembly, checkpoint);

        Assert.True(run.ExitCode == 0, run.Describe());
        var losses = EpochLine().Matches(run.Output).Select(m => double.Parse(m.Groups["loss"].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.True(losses.Count == 2, run.Describe());
        Assert.True(losses[1] < losses[0], $"the training loss did not decrease: {losses[0]} then {losses[1]}\n{run.Describe()}");
        Assert.Contains($"checkpoint: {checkpoint} (TinyResNet,", run.Output);
        var accuracies = ReloadLine().Match(run.Output);
        Assert.True(accuracies.Success, run.Describe());
        Assert.Equal(accuracies.Groups["trained"].Value, accuracies.Groups["reloaded"].Value);
        // The zoo network from the CeDsl.Networks package was created.
        Assert.Matches(@"model zoo: \d+ networks; ce-resnet20 for 1-channel images: [\d,]+ parameters", run.Output);

        // The file is a safetensors CeDsl checkpoint holding the network with CE where the paper puts it.
        var header = SafetensorsHeader(checkpoint);
        Assert.Equal("2", header.GetProperty("__metadata__").GetProperty("cedsl.checkpoint").GetString());
        var names = header.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("model/conv1.weight", names);
        Assert.Contains("model/fc.weight", names);
        Assert.Contains(names, n => n.StartsWith("model/ce1.", StringComparison.Ordinal));
        Assert.Contains(names, n => n.StartsWith("model/layer2.0.ce.", StringComparison.Ordinal));
    }

    [Fact]
    public void Deliberate_mistake_fails_the_build_with_the_documented_diagnostic_at_its_line()
    {
        string directory = packaged.CopySample("mistake");
        string networks = Path.Combine(directory, "Networks.cs");
        string[] lines = File.ReadAllLines(networks);

        // The comment states the exact diagnostic; the commented-out code is the lines that start with "//" and no space.
        var promised = PromisedDiagnostic().Match(string.Join('\n', lines));
        Assert.True(promised.Success, "Networks.cs does not state the diagnostic its deliberate mistake produces.");
        string id = promised.Groups["id"].Value;
        Assert.Equal("CEDSL004", id);
        Assert.Contains($"## {id}", File.ReadAllText(Path.Combine(packaged.Repository, "docs", "diagnostics.md")));
        int uncommented = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith("//", StringComparison.Ordinal) && lines[i].Length > 2 && lines[i][2] != ' ' && lines[i][2] != '/')
            {
                lines[i] = lines[i][2..];
                uncommented++;
            }
        }
        Assert.Equal(3, uncommented);
        File.WriteAllLines(networks, lines);
        int line = Array.FindIndex(lines, l => l.Contains("[ReLU] [CE]", StringComparison.Ordinal)) + 1;
        int column = lines[line - 1].IndexOf("CE]", StringComparison.Ordinal) + 1;
        Assert.Equal($"({line},{column})", $"({promised.Groups["line"].Value},{promised.Groups["column"].Value})");

        var build = DotNet.Run(directory, TimeSpan.FromMinutes(10), "build", "-c", "Release");

        Assert.True(build.ExitCode != 0, build.Describe());
        Assert.Contains($"Networks.cs({line},{column}): error {id}: {promised.Groups["message"].Value}", build.Output);
        var errorIds = ErrorId().Matches(build.Output).Select(m => m.Groups["id"].Value).Distinct().ToList();
        Assert.True(errorIds.SequenceEqual([id]), build.Describe());
    }

    private static JsonElement SafetensorsHeader(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> length = stackalloc byte[8];
        file.ReadExactly(length);
        var json = new byte[checked((int)BinaryPrimitives.ReadUInt64LittleEndian(length))];
        file.ReadExactly(json);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    [GeneratedRegex(@"^epoch \d+: train loss (?<loss>\d+\.\d+),", RegexOptions.Multiline)]
    private static partial Regex EpochLine();

    [GeneratedRegex(@"^test accuracy: trained (?<trained>[\d.]+ ?%), reloaded (?<reloaded>[\d.]+ ?%)", RegexOptions.Multiline)]
    private static partial Regex ReloadLine();

    [GeneratedRegex(@"^//\s+Networks\.cs\((?<line>\d+),(?<column>\d+)\): error (?<id>CEDSL\d{3}): (?<message>.+)$", RegexOptions.Multiline)]
    private static partial Regex PromisedDiagnostic();

    [GeneratedRegex(@"error (?<id>[A-Z]+\d+):")]
    private static partial Regex ErrorId();
}
