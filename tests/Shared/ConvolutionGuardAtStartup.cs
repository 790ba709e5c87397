using System.Runtime.CompilerServices;
using CeDsl.Layers;
using TorchSharp;

namespace CeDsl.Tests.Shared;

/// <summary>
/// Settles, before any test runs, whether this process convolves with oneDNN: ConvolutionGuard turns it off
/// (process-wide) on CPUs where libtorch's oneDNN is defective, and a switch in the middle of the run would
/// change the float32 rounding between two results that tests compare bit for bit (resume, generated vs
/// hand-written). On a CPU without the defect this changes nothing.
/// </summary>
internal static class ConvolutionGuardAtStartup
{
    [ModuleInitializer]
    internal static void Settle()
    {
        using var affectedShape = torch.nn.Conv2d(1, 24, 3);
        ConvolutionGuard.Protect(affectedShape);
    }
}
