using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;
using System.Xml.Linq;

namespace CeDsl.Packaging.Tests;

/// <summary>What the packed CeDsl packages hold, and what the generator writes into a consumer's build.</summary>
[Collection(PackagingCollection.Name)]
public sealed class PackageContentTests(PackagedSample packaged)
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the files (the training package's default folder).</summary>
    private const string DebianDataDirectory = "/usr/share/datasets/fashion-mnist";

    [Fact]
    public void CeDsl_package_holds_the_runtime_the_generator_the_build_logic_the_readme_and_the_license()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl"));
        var entries = package.Entries.Select(e => e.FullName).ToHashSet();

        Assert.Contains("lib/net10.0/CeDsl.Runtime.dll", entries);
        Assert.Contains("lib/net10.0/CeDsl.Runtime.xml", entries);
        Assert.Contains("analyzers/dotnet/cs/CeDsl.Generator.dll", entries);
        Assert.Contains("README.md", entries);
        Assert.Contains("LICENSE", entries);
        foreach (string folder in new[] { "build", "buildTransitive" })
        {
            // NuGet imports <folder>/<package id>.targets; it imports the native-library step beside it.
            Assert.Contains($"{folder}/CeDsl.targets", entries);
            Assert.Contains($"{folder}/CeDsl.Native.targets", entries);
            Assert.Contains($"{folder}/WeakenGlibcxxRequirement.cs", entries);
            Assert.Contains("CeDsl.Native.targets", Read(package, $"{folder}/CeDsl.targets"));
        }
        // Nothing else: no generator in lib/, no stray build output.
        Assert.DoesNotContain(entries, e => e.StartsWith("lib/", StringComparison.Ordinal) && !e.StartsWith("lib/net10.0/CeDsl.Runtime.", StringComparison.Ordinal));
        Assert.Single(entries, e => e.StartsWith("analyzers/", StringComparison.Ordinal));
    }

    [Fact]
    public void CeDsl_package_ships_the_repository_s_native_library_step_unchanged()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl"));
        foreach (string file in new[] { "CeDsl.Native.targets", "WeakenGlibcxxRequirement.cs" })
        {
            string repository = File.ReadAllText(Path.Combine(packaged.Repository, "build", file));
            Assert.Equal(repository, Read(package, $"build/{file}"));
            Assert.Equal(repository, Read(package, $"buildTransitive/{file}"));
        }
        Assert.Equal(File.ReadAllText(Path.Combine(packaged.Repository, "LICENSE")), Read(package, "LICENSE"));
    }

    [Fact]
    public void CeDsl_package_readme_example_is_the_sample_s_compiled_code()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl"));
        string readme = Read(package, "README.md");
        int start = readme.IndexOf("```csharp\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "the package readme has no C# example");
        start += "```csharp\n".Length;
        var example = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)].Split('\n')
            .Where(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal)).ToList();
        // The sample's code up to TinyResNet, without comments and its namespace: the example cannot drift from what the sample test compiles.
        var sample = File.ReadAllLines(Path.Combine(packaged.SampleSource, "Networks.cs"))
            .Where(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal) && !l.StartsWith("namespace ", StringComparison.Ordinal))
            .ToList();
        int end = sample.IndexOf("public partial class TinyResNet;");
        Assert.True(end >= 0, "samples/QuickStart/Networks.cs declares no TinyResNet");
        Assert.Equal(sample[..(end + 1)], example);
    }

    [Fact]
    public void CeDsl_nuspec_has_the_metadata_and_depends_on_TorchSharp_only()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl"));
        var metadata = Nuspec(package);

        Assert.Equal("CeDsl", Value(metadata, "id"));
        Assert.Equal(packaged.Version, Value(metadata, "version"));
        Assert.Equal("MIT", Value(metadata, "license"));
        Assert.Equal("expression", (string?)Child(metadata, "license").Attribute("type"));
        Assert.Equal("README.md", Value(metadata, "readme"));
        Assert.Equal("CeDsl contributors", Value(metadata, "authors"));
        Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "description")));
        Assert.Contains("channel-equilibrium", Value(metadata, "tags"));
        Assert.Equal("git", (string?)Child(metadata, "repository").Attribute("type"));

        var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => $"{e.Attribute("id")?.Value} {e.Attribute("version")?.Value}").ToList();
        // libtorch is the application's choice (CPU or CUDA); the generator is inside the package.
        Assert.Equal(["TorchSharp 0.107.0"], dependencies);
    }

    [Fact]
    public void CeDsl_Networks_package_holds_the_zoo_and_depends_on_CeDsl_with_its_generator_and_build_logic()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl.Networks"));
        var entries = package.Entries.Select(e => e.FullName).ToHashSet();

        Assert.Contains("lib/net10.0/CeDsl.Networks.dll", entries);
        Assert.Contains("lib/net10.0/CeDsl.Networks.xml", entries);
        Assert.Contains("README.md", entries);
        Assert.Contains("LICENSE", entries);
        // The generator that built the zoo is CeDsl's; this package does not ship it again.
        Assert.DoesNotContain(entries, e => e.StartsWith("analyzers/", StringComparison.Ordinal) || e.Contains("CeDsl.Generator", StringComparison.Ordinal)
            || e.Contains("CeDsl.Runtime", StringComparison.Ordinal) || e.StartsWith("build", StringComparison.Ordinal));

        var metadata = Nuspec(package);
        Assert.Equal("CeDsl.Networks", Value(metadata, "id"));
        Assert.Equal("MIT", Value(metadata, "license"));
        Assert.Equal("README.md", Value(metadata, "readme"));
        var dependency = Assert.Single(metadata.Descendants(), e => e.Name.LocalName == "dependency");
        Assert.Equal("CeDsl", dependency.Attribute("id")?.Value);
        Assert.Equal(packaged.Version, dependency.Attribute("version")?.Value);
        // Nothing excluded: a project that references only CeDsl.Networks still gets the generator and the native-library step.
        Assert.Null(dependency.Attribute("exclude"));
    }

    [Fact]
    public void CeDsl_package_holds_no_data_set_and_no_training_analysis_or_data_code()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl"));
        byte[] runtime = ReadBytes(package, "lib/net10.0/CeDsl.Runtime.dll");

        Assert.Empty(Resources(runtime));
        Assert.False(Mentions(runtime, DebianDataDirectory), $"CeDsl.Runtime.dll mentions {DebianDataDirectory}");
        Assert.DoesNotContain(Namespaces(runtime), n => n is "CeDsl.Training" or "CeDsl.Data" or "CeDsl.Analysis");
        Assert.Contains("CeDsl.Layers", Namespaces(runtime));
    }

    [Fact]
    public void CeDsl_Training_package_holds_the_library_and_the_embedded_subset_and_depends_on_CeDsl_at_its_exact_version()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl.Training"));
        var entries = package.Entries.Select(e => e.FullName).ToHashSet();

        Assert.Contains("lib/net10.0/CeDsl.Training.dll", entries);
        Assert.Contains("lib/net10.0/CeDsl.Training.xml", entries);
        Assert.Contains("README.md", entries);
        Assert.Contains("LICENSE", entries);
        Assert.DoesNotContain(entries, e => e.StartsWith("analyzers/", StringComparison.Ordinal) || e.StartsWith("build", StringComparison.Ordinal)
            || e.Contains("CeDsl.Runtime", StringComparison.Ordinal) || e.Contains("CeDsl.Generator", StringComparison.Ordinal));
        byte[] training = ReadBytes(package, "lib/net10.0/CeDsl.Training.dll");
        Assert.Equal(
            ["CeDsl.Data.Embedded.t10k-images-idx3-ubyte.gz", "CeDsl.Data.Embedded.t10k-labels-idx1-ubyte.gz",
             "CeDsl.Data.Embedded.train-images-idx3-ubyte.gz", "CeDsl.Data.Embedded.train-labels-idx1-ubyte.gz"],
            Resources(training).Order(StringComparer.Ordinal));
        Assert.True(Mentions(training, DebianDataDirectory), $"CeDsl.Training.dll does not mention {DebianDataDirectory}");
        Assert.Superset(new HashSet<string> { "CeDsl.Training", "CeDsl.Data", "CeDsl.Analysis" }, Namespaces(training).ToHashSet());

        var metadata = Nuspec(package);
        Assert.Equal("CeDsl.Training", Value(metadata, "id"));
        Assert.Equal("MIT", Value(metadata, "license"));
        Assert.Equal("README.md", Value(metadata, "readme"));
        var dependency = Assert.Single(metadata.Descendants(), e => e.Name.LocalName == "dependency");
        Assert.Equal("CeDsl", dependency.Attribute("id")?.Value);
        // Exactly the same version: the two are released together, and this assembly uses the core's internals.
        Assert.Equal($"[{packaged.Version}]", dependency.Attribute("version")?.Value);
        Assert.Null(dependency.Attribute("exclude"));
    }

    [Fact]
    public void Generated_files_carry_the_auto_generated_header_nullable_context_and_xml_docs()
    {
        var sample = packaged.Sample;
        Assert.True(sample.Build.ExitCode == 0, sample.Build.Describe());
        // The sample sets EmitCompilerGeneratedFiles, so the generator's output is on disk.
        string generated = Path.Combine(sample.Directory, "obj", "Release", "net10.0", "generated", "CeDsl.Generator", "CeDsl.Generator.CeDslGenerator");
        var files = Directory.GetFiles(generated, "*.g.cs").Select(f => Path.GetFileName(f)).Order().ToList();
        Assert.Equal(["QuickStart.BasicBlock.g.cs", "QuickStart.TinyResNet.g.cs"], files);

        foreach (string file in files)
        {
            string[] lines = File.ReadAllLines(Path.Combine(generated, file));
            Assert.Equal("// <auto-generated/>", lines[0]);
            Assert.Equal("#nullable enable", lines[1]);
            int publicMembers = 0;
            for (int i = 0; i < lines.Length; i++)
            {
                string line = lines[i].TrimStart();
                if (!line.StartsWith("public ", StringComparison.Ordinal))
                    continue;
                publicMembers++;
                int previous = i - 1;
                while (lines[previous].TrimStart().StartsWith('['))
                    previous--;
                Assert.True(lines[previous].TrimStart().StartsWith("///", StringComparison.Ordinal),
                    $"{file}:{i + 1}: public member without an XML doc comment: {line}");
            }
            Assert.True(publicMembers >= 2, $"{file} has {publicMembers} public members");
        }
    }

    private static string Read(ZipArchive package, string entry)
    {
        using var reader = new StreamReader(package.GetEntry(entry)!.Open());
        return reader.ReadToEnd();
    }

    private static byte[] ReadBytes(ZipArchive package, string entry)
    {
        using var stream = package.GetEntry(entry)!.Open();
        using var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        return bytes.ToArray();
    }

    /// <summary>The names of the assembly's manifest resources.</summary>
    private static List<string> Resources(byte[] assembly)
    {
        using var pe = new PEReader(new MemoryStream(assembly));
        var reader = pe.GetMetadataReader();
        return [.. reader.ManifestResources.Select(handle => reader.GetString(reader.GetManifestResource(handle).Name))];
    }

    /// <summary>The namespaces of the assembly's types.</summary>
    private static List<string> Namespaces(byte[] assembly)
    {
        using var pe = new PEReader(new MemoryStream(assembly));
        var reader = pe.GetMetadataReader();
        return [.. reader.TypeDefinitions.Select(handle => reader.GetString(reader.GetTypeDefinition(handle).Namespace)).Distinct()];
    }

    /// <summary>Whether the assembly holds <paramref name="text"/>: as a string literal or constant (UTF-16) or anywhere in UTF-8.</summary>
    private static bool Mentions(byte[] assembly, string text) =>
        assembly.AsSpan().IndexOf(Encoding.Unicode.GetBytes(text)) >= 0 || assembly.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) >= 0;

    private static XElement Nuspec(ZipArchive package)
    {
        var nuspec = package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/'));
        using var stream = nuspec.Open();
        return Child(XDocument.Load(stream).Root!, "metadata");
    }

    private static XElement Child(XElement parent, string name) => parent.Elements().Single(e => e.Name.LocalName == name);

    private static string Value(XElement parent, string name) => Child(parent, name).Value;
}
