using System.Xml.Linq;

namespace CeDsl.Packaging.Tests;

/// <summary>The tests that share one pack of the repository and one build of the sample.</summary>
[CollectionDefinition(Name)]
public sealed class PackagingCollection : ICollectionFixture<PackagedSample>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Packaging";
}

/// <summary>
/// Packs the repository's packages with a version no cache has seen into a temporary feed, and
/// builds copies of samples/QuickStart restored from that feed (plus the package registry for
/// TorchSharp and libtorch). The repository's own bin/obj folders are not touched: every build
/// here writes below a temporary folder, which is deleted afterwards with the unpacked packages.
/// </summary>
public sealed class PackagedSample : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);

    private readonly Lazy<BuiltSample> _sample;

    public PackagedSample()
    {
        Repository = FindRepository();
        RepositoryVersion = XDocument.Load(Path.Combine(Repository, "Directory.Build.props"))
            .Descendants("Version").Single().Value;
        Version = $"{RepositoryVersion}-ptest-{Guid.NewGuid().ToString("N")[..12]}";
        WorkDirectory = Directory.CreateTempSubdirectory("cedsl-packaging-").FullName;
        // A consumer's project stands alone: MSBuild stops its upward search for these files here, so
        // build settings that happen to sit in the temporary folder's parents never reach the sample.
        foreach (string file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            File.WriteAllText(Path.Combine(WorkDirectory, file), "<Project />\n");
        Feed = Path.Combine(WorkDirectory, "feed");

        PackageIds = ["CeDsl", "CeDsl.Networks", "CeDsl.Onnx"];
        try
        {
            // --artifacts-path: the build output goes to the work directory, not to the repository's bin/obj.
            foreach (string project in new[] { "src/CeDsl.Runtime/CeDsl.Runtime.csproj", "src/CeDsl.Networks/CeDsl.Networks.csproj", "src/CeDsl.Onnx/CeDsl.Onnx.csproj" })
            {
                DotNet.Run(Repository, CommandTimeout, "pack", Path.Combine(Repository, project), "-c", "Release",
                    "-o", Feed, "--artifacts-path", Path.Combine(WorkDirectory, "pack-artifacts"), $"-p:Version={Version}").EnsureSuccess();
            }
        }
        catch
        {
            Directory.Delete(WorkDirectory, recursive: true);
            throw;
        }
        _sample = new Lazy<BuiltSample>(() =>
        {
            string directory = CopySample("sample");
            var build = DotNet.Run(directory, CommandTimeout, "build", "-c", "Release");
            return new BuiltSample(directory, build);
        });
    }

    /// <summary>The repository's root folder (the one with CeDsl.sln).</summary>
    public string Repository { get; }

    /// <summary>The version in Directory.Build.props, the one the sample references.</summary>
    public string RepositoryVersion { get; }

    /// <summary>The unique prerelease version the packages were packed with.</summary>
    public string Version { get; }

    /// <summary>The temporary folder that holds the feed and the sample copies.</summary>
    public string WorkDirectory { get; }

    /// <summary>The folder the packages were packed into.</summary>
    public string Feed { get; }

    /// <summary>The ids of the packages packed.</summary>
    public IReadOnlyList<string> PackageIds { get; }

    /// <summary>The sample, unchanged, built from the packed packages (on first use).</summary>
    public BuiltSample Sample => _sample.Value;

    /// <summary>The .nupkg of <paramref name="id"/>.</summary>
    public string PackagePath(string id) => Path.Combine(Feed, $"{id}.{Version}.nupkg");

    /// <summary>The repository's samples/QuickStart folder.</summary>
    public string SampleSource => Path.Combine(Repository, "samples", "QuickStart");

    /// <summary>
    /// Copies samples/<paramref name="sample"/> (without build output) to a new folder <paramref name="name"/> of the work
    /// directory, pointing its nuget.config at the feed and its references to the packed packages at <see cref="Version"/>
    /// (in every project of the sample; each must reference the repository's version).
    /// </summary>
    public string CopySample(string name, string sample = "QuickStart")
    {
        string target = Path.Combine(WorkDirectory, name);
        CopyDirectory(Path.Combine(Repository, "samples", sample), target);

        string config = Path.Combine(target, "nuget.config");
        var configXml = XDocument.Load(config);
        var localSource = configXml.Descendants("add").Single(e => (string?)e.Attribute("key") == "cedsl-local");
        localSource.SetAttributeValue("value", Feed);
        configXml.Save(config);

        foreach (string project in Directory.GetFiles(target, "*.csproj", SearchOption.AllDirectories))
        {
            var projectXml = XDocument.Load(project);
            var references = projectXml.Descendants("PackageReference")
                .Where(e => PackageIds.Contains((string?)e.Attribute("Include"))).ToList();
            foreach (var reference in references)
            {
                Assert.True(RepositoryVersion == (string?)reference.Attribute("Version"),
                    $"samples/{sample}/{Path.GetFileName(project)} references {reference.Attribute("Include")} {reference.Attribute("Version")}, the repository is at {RepositoryVersion}.");
                reference.SetAttributeValue("Version", Version);
            }
            projectXml.Save(project);
        }
        return target;
    }

    public void Dispose()
    {
        Directory.Delete(WorkDirectory, recursive: true);
        // The unique version was unpacked into the global packages folder; nothing else will use it.
        string globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (string id in PackageIds)
        {
            string versions = Path.Combine(globalPackages, id.ToLowerInvariant());
            string unpacked = Path.Combine(versions, Version.ToLowerInvariant());
            if (Directory.Exists(unpacked))
                Directory.Delete(unpacked, recursive: true);
            if (Directory.Exists(versions) && !Directory.EnumerateFileSystemEntries(versions).Any())
                Directory.Delete(versions);
        }
    }

    private static string FindRepository()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CeDsl.sln")))
                return directory.FullName;
        }
        throw new DirectoryNotFoundException($"No CeDsl.sln above {AppContext.BaseDirectory}.");
    }

    private static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (string file in Directory.EnumerateFiles(source))
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        foreach (string directory in Directory.EnumerateDirectories(source))
        {
            string name = Path.GetFileName(directory);
            if (name is not ("bin" or "obj" or "checkpoints"))
                CopyDirectory(directory, Path.Combine(target, name));
        }
    }
}

/// <summary>A copy of the sample and the result of building it.</summary>
/// <param name="Directory">The copy's folder.</param>
/// <param name="Build">The <c>dotnet build -c Release</c> that built it.</param>
public sealed record BuiltSample(string Directory, CommandResult Build)
{
    /// <summary>The built application.</summary>
    public string Assembly => Path.Combine(Directory, "bin", "Release", "net10.0", "QuickStart.dll");
}
