using CeDsl.Layers;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>
/// The two ways <see cref="ChannelEquilibrium"/> computes: the CPU kernels (the default for float32 and
/// float64 CPU tensors without pooling) and libtorch's operators (pooling, other devices and types, or
/// <see cref="ChannelEquilibrium.OperatorsOnly"/>). Tests of CE's numbers run on both.
/// </summary>
public enum CePath { Kernels, Operators }

internal static class CePaths
{
    public static TheoryData<CePath> Both => new() { CePath.Kernels, CePath.Operators };

    /// <summary>The module set to compute on <paramref name="path"/>.</summary>
    public static ChannelEquilibrium On(this ChannelEquilibrium ce, CePath path)
    {
        ce.OperatorsOnly = path == CePath.Operators;
        return ce;
    }

    /// <summary>The module's last call ran on <paramref name="path"/> (the kernels never take pooling).</summary>
    public static void AssertRanOn(this ChannelEquilibrium ce, CePath path) =>
        Assert.True(ce.RanOnKernels == (path == CePath.Kernels), $"the call ran on {(ce.RanOnKernels ? "the kernels" : "the operators")}, expected {path}");
}
