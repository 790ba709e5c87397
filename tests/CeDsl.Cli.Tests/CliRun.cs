using System.CommandLine;
using System.IO.Compression;
using CeDsl.Data;
using CeDsl.IO;
using TorchSharp;

namespace CeDsl.Cli.Tests;

/// <summary>The outcome of one in-process <c>cedsl</c> invocation.</summary>
internal sealed record CliResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
}

/// <summary>Runs <c>cedsl</c> in-process, as a user would from the shell, and the files the tests need.</summary>
internal static class CliRun
{
    /// <summary>Small enough for tests: ce-resnet20 on 64 training images in batches of 16, evaluated on 50.</summary>
    public static readonly string[] QuickTraining = ["--embedded", "--limit-train", "64", "--batch", "16", "--limit-test", "50"];

    public static CliResult Run(params string[] args) => Run(Cli.CreateRoot(), args);

    public static CliResult Run(RootCommand root, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exitCode = Cli.Run(root, args, output, error);
        return new CliResult(exitCode, output.ToString(), error.ToString());
    }

    public static CliResult Succeeds(params string[] args)
    {
        var result = Run(args);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    /// <summary>A new empty directory under the system's temporary directory.</summary>
    public static string TemporaryDirectory() => Directory.CreateTempSubdirectory("cedsl-cli-").FullName;

    /// <summary>Writes the embedded subset's four IDX gzip files to <paramref name="directory"/>, as Debian installs them.</summary>
    public static void WriteEmbeddedIdxFiles(string directory)
    {
        foreach (var split in new[] { DatasetSplit.Train, DatasetSplit.Test })
        foreach (bool images in new[] { true, false })
        {
            using var resource = typeof(FashionMnist).Assembly.GetManifestResourceStream(FashionMnist.EmbeddedResourceName(split, images))!;
            using var file = File.Create(Path.Combine(directory, FashionMnist.FileName(split, images)));
            resource.CopyTo(file);
        }
    }

    /// <summary>Every file under <paramref name="directory"/> with its bytes and last write time.</summary>
    public static Dictionary<string, (byte[] Bytes, DateTime Written)> Snapshot(string directory) =>
        Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, f => (File.ReadAllBytes(f), File.GetLastWriteTimeUtc(f)));

    public static void AssertUnchanged(Dictionary<string, (byte[] Bytes, DateTime Written)> before, string directory)
    {
        var after = Snapshot(directory);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (path, (bytes, written)) in before)
        {
            Assert.True(bytes.AsSpan().SequenceEqual(after[path].Bytes), $"{path} changed");
            Assert.Equal(written, after[path].Written);
        }
    }

    /// <summary>Whether two safetensors files hold the same tensors, bit for bit (metadata aside).</summary>
    public static void AssertSameTensors(string expectedPath, string actualPath, Func<string, bool>? include = null)
    {
        using var scope = torch.NewDisposeScope();
        var expected = SafeTensors.Load(expectedPath);
        var actual = SafeTensors.Load(actualPath);
        var names = expected.Keys.Where(include ?? (_ => true)).Order().ToList();
        Assert.Equal(names, actual.Keys.Where(include ?? (_ => true)).Order());
        Assert.NotEmpty(names);
        foreach (string name in names)
            Assert.True(expected[name].dtype == actual[name].dtype && expected[name].shape.SequenceEqual(actual[name].shape)
                && expected[name].bytes.SequenceEqual(actual[name].bytes), $"tensor '{name}' differs");
    }

    /// <summary>Decompresses a gzip file, lets <paramref name="edit"/> change the bytes, and compresses it again.</summary>
    public static void EditGzip(string path, Action<byte[]> edit)
    {
        byte[] bytes;
        using (var input = new GZipStream(File.OpenRead(path), CompressionMode.Decompress))
        using (var buffer = new MemoryStream())
        {
            input.CopyTo(buffer);
            bytes = buffer.ToArray();
        }
        edit(bytes);
        using var output = new GZipStream(File.Create(path), CompressionLevel.Fastest);
        output.Write(bytes);
    }
}

/// <summary>The tests that train share the machine's two cores (they run one at a time) and one trained run.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TrainingCollection : ICollectionFixture<TrainedRun>
{
    public const string Name = "cedsl training";
}
