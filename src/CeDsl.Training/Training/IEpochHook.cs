using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training;

/// <summary>
/// Work the <see cref="Trainer"/> does at the end of each epoch, after the evaluation and before the
/// checkpoint is written (so a resumed run continues from the hook's result), for example
/// <see cref="Selective.SelectiveSchedule"/>.
/// </summary>
public interface IEpochHook
{
    /// <summary>Called once per epoch.</summary>
    /// <param name="model">The model being trained (in training mode).</param>
    /// <param name="epoch">The epoch just finished, counted from 1.</param>
    /// <param name="epochs">The number of epochs of the run.</param>
    void AfterEpoch(nn.Module<Tensor, Tensor> model, int epoch, int epochs);
}
