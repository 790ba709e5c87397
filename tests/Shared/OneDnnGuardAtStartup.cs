using System.Runtime.CompilerServices;
using CeDsl.Platform;
using TorchSharp;

namespace CeDsl.Tests.Shared;

/// <summary>
/// Settles, before any test runs, whether this process convolves with oneDNN: OneDnnGuard turns it off
/// (process-wide) on CPUs where libtorch's oneDNN computes convolutions with channel tails wrongly, and a
/// switch in the middle of the run would change the float32 rounding between two results that tests compare
/// bit for bit (resume, generated vs hand-written). On a CPU without the defect this changes nothing.
/// </summary>
internal static class OneDnnGuardAtStartup
{
    [ModuleInitializer]
    internal static void Settle()
    {
        using var channelTail = torch.nn.Conv2d(1, 24, 3);
        OneDnnGuard.Protect(channelTail);
    }
}
