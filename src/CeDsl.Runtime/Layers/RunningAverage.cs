using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

internal static class RunningAverage
{
    /// <summary>running = (1 - m) * running + m * value, detached, as the reference does it.</summary>
    internal static void Update(Tensor running, Tensor value, double momentum)
    {
        using var noGrad = no_grad();
        running.mul_(1.0 - momentum).add_(value.detach() * momentum);
    }
}
