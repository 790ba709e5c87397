using System.Text.RegularExpressions;

namespace CeDsl.Cli.Tests;

/// <summary>
/// The cedsl commands of docs/guide.md run, in order, and succeed; their run directory
/// (runs/guide) is a temporary one.
/// </summary>
public partial class GuideCommandTests
{
    [GeneratedRegex(@"^```sh\n(?<code>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex ShellBlock();

    private static string Guide()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var path = Path.Combine(directory.FullName, "docs", "guide.md");
            if (File.Exists(path)) return File.ReadAllText(path).ReplaceLineEndings("\n");
        }
        throw new InvalidOperationException("docs/guide.md not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void EveryCommandOfTheGuideSucceeds()
    {
        var commands = ShellBlock().Matches(Guide())
            .SelectMany(m => m.Groups["code"].Value.Split('\n'))
            .Where(line => line.StartsWith("cedsl ", StringComparison.Ordinal))
            .ToList();
        Assert.True(commands.Count >= 5, string.Join("\n", commands));
        Assert.All(commands, c => Assert.DoesNotMatch("[|;&<>\"']", c)); // plain arguments: split on spaces

        var directory = CliRun.TemporaryDirectory();
        try
        {
            foreach (var command in commands)
            {
                var args = command.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                    .Select(a => a.Replace("runs/guide", directory, StringComparison.Ordinal)).ToArray();
                var result = CliRun.Run(args);
                Assert.True(result.ExitCode == 0, command + "\n" + result);
            }
            Assert.True(File.Exists(Path.Combine(directory, "folded.safetensors")));
            Assert.True(File.Exists(Path.Combine(directory, "analysis", "channels.csv")));
            var importance = File.ReadAllLines(Path.Combine(directory, "analysis", "importance.csv"));
            Assert.Equal(9 + 2, importance.Length); // header, ce-resnet20's nine bn1-relu-conv2 chains, the overall row
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
