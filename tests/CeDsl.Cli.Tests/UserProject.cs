using System.Diagnostics;

namespace CeDsl.Cli.Tests;

/// <summary>
/// A user's own project, built once with <c>dotnet build</c> in a temporary folder: networks declared with
/// the CeDsl attributes, compiled by the CeDsl generator against the runtime cedsl itself was built with
/// (the test output's CeDsl.Runtime.dll and TorchSharp.dll, not copied beside the user's assembly).
/// </summary>
public sealed class UserProject : IDisposable
{
    public const string Networks = """
        using CeDsl;

        namespace MyNetworks;

        [Block(Residual = Shortcut.Projection)]
        [Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
        [Conv(3)] [Norm(Kind.BN)]
        [Add] [ReLU]
        public partial class PlainBlock;

        [Network(Input = "1x28x28", Classes = 10, CE = Placement.Paper)]
        [Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [ReLU]
        [Stage(typeof(PlainBlock), Blocks = 1, Out = 16)]
        [Stage(typeof(PlainBlock), Blocks = 1, Out = 32, Stride = 2)]
        public partial class TinyCeNet;

        // Its head ends with a fixed number of features, so its constructor takes no classes.
        [Network(Input = "1x32x32", Classes = 10)]
        [Conv(3, Out = 8)] [Norm(Kind.BN)] [ReLU]
        [Head] [GlobalAvgPool] [Flatten] [Linear(10)]
        public partial class FixedHeadNet;

        // Named like a zoo network (resnet20) but for case.
        [Network(Input = "1x32x32", Classes = 10)]
        [Conv(3, Out = 8)] [Norm(Kind.BN)] [ReLU]
        public partial class ResNet20;
        """;

    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(10);

    public UserProject()
    {
        Root = CliRun.TemporaryDirectory();
        // A user's project stands alone: MSBuild stops its upward search for these files here.
        foreach (string file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            File.WriteAllText(Path.Combine(Root, file), "<Project />\n");
        string beside = AppContext.BaseDirectory;
        File.WriteAllText(Path.Combine(Root, "MyNetworks.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <Reference Include="CeDsl.Runtime" HintPath="{Path.Combine(beside, "CeDsl.Runtime.dll")}" Private="false" />
                <Reference Include="TorchSharp" HintPath="{Path.Combine(beside, "TorchSharp.dll")}" Private="false" />
                <Analyzer Include="{Path.Combine(beside, "generator", "CeDsl.Generator.dll")}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(Root, "Networks.cs"), Networks);
        Build = DotNetBuild(Root);
    }

    /// <summary>The temporary folder holding the project; deleted afterwards.</summary>
    public string Root { get; }

    /// <summary>What <c>dotnet build</c> printed, and its exit code.</summary>
    internal CliResult Build { get; }

    /// <summary>The built assembly, to give cedsl with --assembly.</summary>
    public string Assembly => Path.Combine(Root, "bin", "Release", "net10.0", "MyNetworks.dll");

    public void Dispose() => Directory.Delete(Root, recursive: true);

    private static CliResult DotNetBuild(string directory)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { "build", "-c", "Release", "-nologo" })
            start.ArgumentList.Add(argument);
        // The test host runs under `dotnet test`, whose MSBuild variables must not steer the user's build.
        foreach (string name in start.Environment.Keys.Where(n => n.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || n.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(BuildTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet build of the user project took more than {BuildTimeout}.");
        }
        return new CliResult(process.ExitCode, output.Result, error.Result);
    }
}
