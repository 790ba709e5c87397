using System.Runtime.InteropServices;

namespace CeDsl.Platform;

/// <summary>
/// The switches of libtorch's global context that TorchSharp does not bind: what PyTorch's
/// <c>torch.backends.mkldnn.enabled</c> and <c>torch.backends.nnpack.set_flags</c> set.
/// </summary>
internal static class LibTorchContext
{
    private const string LibTorch = "libtorch_cpu";

    /// <summary>Turns libtorch's oneDNN (MKL-DNN) kernels on or off for the process.</summary>
    /// <exception cref="EntryPointNotFoundException">This libtorch does not export the switch.</exception>
    public static void SetOneDnnEnabled(bool enabled) => SetUserEnabledMkldnn(GlobalContext(), enabled);

    /// <summary>
    /// Turns NNPACK off for the process when it cannot initialize on this CPU. libtorch asks for NNPACK
    /// before many convolutions and, when its initialization failed, prints "Could not initialize NNPACK!
    /// Reason: Unsupported hardware." every time; asking NNPACK itself prints nothing.
    /// </summary>
    /// <returns>True when NNPACK was turned off.</returns>
    public static bool TurnOffNnpackIfUnsupported()
    {
        try
        {
            if (NnpInitialize() == NnpStatusSuccess)
                return false;
            SetUserEnabledNnpack(GlobalContext(), false);
            return true;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false; // a libtorch built without NNPACK never asks for it
        }
    }

    private const int NnpStatusSuccess = 0;

    [DllImport(LibTorch, EntryPoint = "_ZN2at13globalContextEv")]
    private static extern IntPtr GlobalContext();

    [DllImport(LibTorch, EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    private static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport(LibTorch, EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    // NNPACK's own initialization (idempotent), exported by libtorch_cpu; returns an nnp_status.
    [DllImport(LibTorch, EntryPoint = "nnp_initialize")]
    private static extern int NnpInitialize();
}
