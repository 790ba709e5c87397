namespace CeDsl.Layers;

/// <summary>
/// The default hyper-parameters of CeDsl's layers, written once: the layers' constructors, their
/// <c>CeDsl.Architecture</c> operations and the DSL's attributes take them from here, and the source
/// generator compiles this file, so a generated module never depends on a default of its own.
/// Pure constants without any TorchSharp dependency.
/// </summary>
internal static class LayerDefaults
{
    /// <summary>The requested group size d of CE and BD (the reference's residual blocks).</summary>
    public const int GroupSize = 16;

    /// <summary>The group size of the CE that <c>Placement.Paper</c> puts in a network's stem (the reference ResNet's).</summary>
    public const int StemGroupSize = 64;

    /// <summary>The reduction ratio r of the CE and AII gate.</summary>
    public const int Reduction = 4;

    /// <summary>The reduction ratio r of squeeze-and-excitation (SENet's).</summary>
    public const int SqueezeExcitationReduction = 16;

    /// <summary>The Newton iterations T of CE and BD (the reference's; not run to convergence).</summary>
    public const int Iterations = 3;

    /// <summary>Whether CE and BD take the covariance of the 2x2 max-pooled input.</summary>
    public const bool Pool = false;

    /// <summary>The epsilon of the normalizations and of the CE and BD covariance (PyTorch's norms').</summary>
    public const double Eps = 1e-5;

    /// <summary>The running-statistics momentum of the normalizations, CE, BD and AII (PyTorch's norms').</summary>
    public const double Momentum = 0.1;

    /// <summary>The dealloc threshold gamma of a selective convolution.</summary>
    public const double Gamma = 0.001;

    /// <summary>The realloc candidates K of a selective convolution (0: pruning only).</summary>
    public const int K = 3;

    /// <summary>The align_corners of a selective convolution's shift (the released code's PyTorch &lt; 1.3 behaviour).</summary>
    public const bool AlignCorners = true;
}
