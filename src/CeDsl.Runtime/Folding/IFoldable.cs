using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Folding;

/// <summary>
/// A module that can fold itself for inference: every generated block and network implements it
/// (explicitly), so tools can fold a network without knowing its type.
/// </summary>
public interface IFoldable
{
    /// <summary>
    /// Returns a new inference-only module, in evaluation mode, whose outputs equal this module's
    /// evaluation-mode outputs; this module is not modified.
    /// </summary>
    /// <exception cref="InvalidOperationException">A module is in training mode or its statistics were
    /// never estimated; the message names it.</exception>
    nn.Module<Tensor, Tensor> Fold();
}
