using System.Text.RegularExpressions;
using TorchSharp;

namespace CeDsl.Runtime.Tests;

/// <summary>CUDA without libtorch's CUDA build fails naming the packages, and every document names the same ones.</summary>
public partial class DevicesTests
{
    [Fact]
    public void Cuda_without_the_cuda_build_names_the_packages_to_reference()
    {
        if (torch.cuda.is_available())
        {
            Assert.Equal(DeviceType.CUDA, Devices.Cuda.type);
            return;
        }

        var error = Assert.Throws<InvalidOperationException>(() => Devices.Cuda);

        Assert.Contains("this application references libtorch's CPU build", error.Message);
        Assert.Contains("TorchSharp-cuda-linux (Linux) or TorchSharp-cuda-windows (Windows)", error.Message);
        Assert.Contains("libtorch-cuda-12.8-linux-x64", error.Message);
    }

    [GeneratedRegex(@"(?:TorchSharp|libtorch)-cuda[\w.-]*\w", RegexOptions.IgnoreCase)]
    private static partial Regex CudaPackageName();

    [Theory]
    [InlineData("docs/guide.md")]
    [InlineData("docs/packaging.md")]
    [InlineData("pack/README.CeDsl.md")]
    [InlineData("pack/README.CeDsl.Networks.md")]
    [InlineData("samples/QuickStart/QuickStart.csproj")]
    public void Every_document_that_mentions_cuda_names_the_packages_as_the_error_does(string document)
    {
        string text = File.ReadAllText(Path.Combine(Root(), document));
        var expected = CudaPackageName().Matches(Devices.CudaPackages).Select(m => m.Value).ToHashSet();

        var named = CudaPackageName().Matches(text).Select(m => m.Value).ToHashSet();

        Assert.Contains("CUDA", text);
        Assert.Equal(expected.Order(), named.Order());
        Assert.Contains("Devices.Cuda", text);
    }

    private static string Root()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CeDsl.sln"))) return directory.FullName;
        }
        throw new InvalidOperationException("CeDsl.sln not found above " + AppContext.BaseDirectory);
    }
}
