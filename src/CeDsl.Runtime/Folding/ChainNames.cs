namespace CeDsl.Folding;

/// <summary>
/// The names of a chain's modules in their network (for example <c>layer1.0.conv3</c>,
/// <c>layer1.0.bn3</c>, <c>layer1.0.ce</c>), used only to name the offending module in errors.
/// </summary>
public sealed record ChainNames(string Conv = "conv", string Norm = "norm", string Block = "block");
