namespace CeDsl.Analysis;

/// <summary>The rectifier that follows a probed normalization block.</summary>
public enum Rectifier
{
    /// <summary>No rectifier follows (e.g. the last BN of a residual branch): no sparsity is measured.</summary>
    None,

    /// <summary>max(0, x).</summary>
    ReLU,

    /// <summary>min(max(0, x), 6).</summary>
    ReLU6,
}

/// <summary>
/// One "normalization + rectifier" block of a network, named by module paths as
/// <c>named_children</c> spells them (e.g. <c>layer1.0.bn1</c>).
/// </summary>
/// <remarks>
/// A module's forward order cannot be read from a TorchSharp network, so a probe point states it:
/// the rectifier is applied to the output of <see cref="PreActivation"/>, i.e. the network computes
/// <c>rectifier(Equilibrium(Normalization(x)))</c> (or <c>rectifier(Normalization(x))</c> without an
/// equilibrium module). The analysis applies that rectifier itself to the hooked output of
/// <see cref="PreActivation"/>; this gives exactly the post-rectifier values, and it works when the
/// network uses a functional ReLU or one ReLU module shared by several blocks (which a hook on the
/// ReLU module could not tell apart).
/// </remarks>
/// <param name="Normalization">The <c>BatchNorm2d</c> whose gamma and beta are examined and whose output can be ablated.</param>
/// <param name="Equilibrium">A module applied directly to the normalization's output before the rectifier
/// (ChannelEquilibrium, BatchDecorrelation or AdaptiveInstanceInverse), or null.</param>
/// <param name="Rectifier">The rectifier applied to the block's output.</param>
/// <param name="Activation">The rectifier module's name, if it is a module; for reports only.</param>
public sealed record ProbePoint(string Normalization, string? Equilibrium = null, Rectifier Rectifier = Rectifier.ReLU, string? Activation = null)
{
    /// <summary>The module whose output the rectifier takes: <see cref="Equilibrium"/> if present, else <see cref="Normalization"/>.</summary>
    public string PreActivation => Equilibrium ?? Normalization;
}
