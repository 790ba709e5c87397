using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl;

/// <summary>
/// Devices to build modules on, failing with what to do when this process cannot use them. TorchSharp's
/// <c>torch.CUDA</c> says only "Torch device type CUDA did not initialise" in an application that
/// references libtorch's CPU build.
/// </summary>
public static class Devices
{
    /// <summary>The packages that bring libtorch's CUDA build for TorchSharp 0.107 (libtorch 2.10, CUDA 12.8), as every CeDsl document names them.</summary>
    public const string CudaPackages =
        "TorchSharp-cuda-linux (Linux) or TorchSharp-cuda-windows (Windows), or TorchSharp with libtorch-cuda-12.8-linux-x64 or libtorch-cuda-12.8-win-x64";

    /// <summary>The first CUDA device, like <c>torch.CUDA</c>.</summary>
    /// <exception cref="InvalidOperationException">CUDA is not available; the message says why and which packages to reference.</exception>
    public static Device Cuda
    {
        get
        {
            if (cuda.is_available())
                return CUDA;
            bool cudaBuildLoaded = NativeLibrary.TryLoad("torch_cuda", typeof(torch).Assembly, null, out _);
            throw new InvalidOperationException(cudaBuildLoaded
                ? "CUDA is not available: libtorch's CUDA build is loaded but finds no usable GPU (no NVIDIA GPU, or no driver for CUDA 12.8)."
                : "CUDA is not available: this application references libtorch's CPU build, which has no CUDA. " +
                  $"Reference {CudaPackages} instead of libtorch-cpu-*, on a machine with an NVIDIA GPU and its driver.");
        }
    }
}
