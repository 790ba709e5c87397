using CeDsl.Data;
using CeDsl.Platform;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training;

/// <summary>Evaluates a classifier: mean cross-entropy and top-1 accuracy, in evaluation mode.</summary>
public static class Evaluator
{
    /// <summary>
    /// Runs <paramref name="model"/> in evaluation mode without gradients over every batch of epoch 0
    /// of <paramref name="loader"/> (use an unshuffled, unaugmented loader), then restores its mode.
    /// </summary>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, BatchLoader loader, CancellationToken cancellation = default)
    {
        OneDnnGuard.Protect(model);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            double lossSum = 0;
            long correct = 0;
            int images = 0;
            for (int index = 0; index < loader.BatchesPerEpoch; index++)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var batch = loader.GetBatch(0, index);
                var logits = model.call(batch.Images);
                lossSum += nn.functional.cross_entropy(logits, batch.Labels, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(batch.Labels).sum().item<long>();
                images += batch.Size;
            }
            return new EvaluationResult(lossSum / images, (double)correct / images, images);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Evaluates on every image of <paramref name="dataset"/> with the given input preparation.</summary>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, ImageDataset dataset, Normalization normalization,
        int? padTo = null, int batchSize = 500, CancellationToken cancellation = default)
    {
        using var loader = new BatchLoader(dataset, new BatchOptions { BatchSize = batchSize, Normalization = normalization, PadTo = padTo });
        return Evaluate(model, loader, cancellation);
    }
}
