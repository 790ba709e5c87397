using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests;

public class NativeLoadingTests
{
    [Fact]
    public void Libtorch_loads_and_computes_on_cpu()
    {
        using var a = tensor(new double[] { 1, 2, 3, 4 }).reshape(2, 2);
        using var product = a.matmul(a);
        Assert.Equal(new double[] { 7, 10, 15, 22 }, product.data<double>().ToArray());
    }

    [Fact]
    public void Copied_LibTorchSharp_has_no_hard_requirement_on_GLIBCXX_3_4_32()
    {
        string library = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(library), $"{library} was not copied to the test output");
        // Either the system provides the version (the build left the file alone) or the
        // requirement is weak; loading libtorch above proves the combination works.
        using var _ = ones(1);
        Assert.True(torch.TryInitializeDeviceType(DeviceType.CPU));
    }
}
