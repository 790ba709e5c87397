using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace CeDsl.Packaging.Tests;

/// <summary>
/// samples/OnnxDeployment restored from the packed packages: its exporter (CeDsl.Networks, CeDsl.Onnx, libtorch) trains and
/// exports a folded CE-ResNet-20, and its classifier, built on ONNX Runtime alone, classifies the test images with the file
/// exactly as TorchSharp did.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed partial class OnnxDeploymentSampleTests(PackagedSample packaged)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    [Fact]
    public void The_exported_model_classifies_the_test_images_with_ONNX_Runtime_alone_as_TorchSharp_did()
    {
        string directory = packaged.CopySample("onnx", "OnnxDeployment");
        string export = Path.Combine(directory, "Export"), classify = Path.Combine(directory, "Classify");
        DotNet.Run(export, Timeout, "build", "-c", "Release").EnsureSuccess();
        DotNet.Run(classify, Timeout, "build", "-c", "Release").EnsureSuccess();

        string model = Path.Combine(directory, "ce-resnet20.onnx");
        var exported = DotNet.Run(export, Timeout, Path.Combine(export, "bin", "Release", "net10.0", "Export.dll"), model).EnsureSuccess();
        // The embedded test subset (500 images) as IDX files: what the exporter evaluated on.
        string images = Path.Combine(packaged.Repository, "src", "CeDsl.Runtime", "Data", "Embedded");
        var classified = DotNet.Run(classify, Timeout, Path.Combine(classify, "bin", "Release", "net10.0", "Classify.dll"), model, images).EnsureSuccess();

        var torch = Accuracy("TorchSharp, folded").Match(exported.Output);
        var onnx = Accuracy("ONNX Runtime").Match(classified.Output);
        Assert.True(torch.Success, exported.Describe());
        Assert.True(onnx.Success, classified.Describe());
        Assert.Equal("500", onnx.Groups["images"].Value);
        Assert.Equal(torch.Groups["correct"].Value, onnx.Groups["correct"].Value);
        Assert.Contains("model: CeResNet20.Folded (CeDsl ", classified.Output);
        Assert.Contains("input 'input' 1x28x28, 10 classes", classified.Output);

        // The classifier ships without CeDsl, TorchSharp or libtorch.
        string assets = File.ReadAllText(Path.Combine(classify, "obj", "project.assets.json"));
        Assert.DoesNotContain("TorchSharp", assets);
        Assert.DoesNotContain("CeDsl", assets);
        var output = Directory.GetFiles(Path.Combine(classify, "bin", "Release", "net10.0"), "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        Assert.DoesNotContain(output, f => f!.Contains("torch", StringComparison.OrdinalIgnoreCase) || f.StartsWith("CeDsl", StringComparison.Ordinal));
        Assert.Contains(output, f => f == "libonnxruntime.so");
    }

    [Fact]
    public void CeDsl_Onnx_package_holds_the_exporter_and_depends_on_CeDsl_OnnxSharp_and_Google_Protobuf_not_on_ONNX_Runtime()
    {
        using var package = ZipFile.OpenRead(packaged.PackagePath("CeDsl.Onnx"));
        var entries = package.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("lib/net10.0/CeDsl.Onnx.dll", entries);
        Assert.Contains("lib/net10.0/CeDsl.Onnx.xml", entries);
        Assert.Contains("README.md", entries);
        Assert.Contains("LICENSE", entries);
        Assert.DoesNotContain(entries, e => e.StartsWith("analyzers/", StringComparison.Ordinal) || e.Contains("CeDsl.Runtime", StringComparison.Ordinal));

        var nuspec = package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/'));
        using var stream = nuspec.Open();
        var dependencies = XDocument.Load(stream).Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => $"{e.Attribute("id")?.Value} {e.Attribute("version")?.Value}").Order(StringComparer.Ordinal).ToList();
        Assert.Equal([$"CeDsl {packaged.Version}", "Google.Protobuf 3.36.2", "OnnxSharp 0.3.2"], dependencies);
    }

    private static Regex Accuracy(string who) =>
        new(Regex.Escape(who) + @": accuracy [\d.]+ ?% \((?<correct>\d+) of (?<images>\d+) test images\)");
}
