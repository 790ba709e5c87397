using System.Runtime.CompilerServices;
using DiffPlex.Renderer;

namespace CeDsl.Generator.Tests.Infrastructure;

/// <summary>
/// Snapshot files beside the tests: Snapshots/NAME.verified.cs holds the approved text. A mismatch
/// writes NAME.received.cs next to it and fails with a unified diff; CEDSL_ACCEPT=1 approves the
/// received text instead.
/// </summary>
internal static class Snapshot
{
    public static void Match(string actual, string name, [CallerFilePath] string testFile = "")
    {
        var directory = Path.Combine(Path.GetDirectoryName(testFile)!, "Snapshots");
        var verified = Path.Combine(directory, name + ".verified.cs");
        var received = Path.Combine(directory, name + ".received.cs");
        actual = Normalize(actual);

        if (Environment.GetEnvironmentVariable("CEDSL_ACCEPT") == "1")
        {
            Directory.CreateDirectory(directory);
            File.WriteAllText(verified, actual);
            File.Delete(received);
            return;
        }

        if (!File.Exists(verified))
        {
            File.WriteAllText(received, actual);
            Assert.Fail($"No approved snapshot {verified}. Review {received} and rename it to .verified.cs (or run with CEDSL_ACCEPT=1).");
        }

        var expected = Normalize(File.ReadAllText(verified));
        if (expected == actual)
        {
            File.Delete(received);
            return;
        }

        File.WriteAllText(received, actual);
        var diff = UnidiffRenderer.Instance.Generate(expected, actual, Path.GetFileName(verified), Path.GetFileName(received));
        Assert.Fail($"Generated source differs from {verified} (received: {received}):{Environment.NewLine}{diff}");
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n");
}
