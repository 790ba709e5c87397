namespace CeDsl.Training;

/// <summary>Reported after every training step (for a progress bar).</summary>
/// <param name="Epoch">The epoch in progress, from 1.</param>
/// <param name="Epochs">The total number of epochs.</param>
/// <param name="Batch">The batch just trained, from 1.</param>
/// <param name="BatchesPerEpoch">Batches in an epoch.</param>
/// <param name="GlobalStep">Steps done since the start of training, this one included.</param>
/// <param name="LearningRate">The learning rate of this step (before any group-specific decay).</param>
/// <param name="Loss">This batch's training loss (label-smoothed).</param>
/// <param name="Accuracy">This batch's top-1 accuracy, 0..1.</param>
/// <param name="EpochLoss">Mean training loss of the epoch so far.</param>
/// <param name="EpochAccuracy">Top-1 accuracy of the epoch so far, 0..1.</param>
/// <param name="ImagesPerSecond">Training throughput of the epoch so far.</param>
public sealed record TrainingStep(int Epoch, int Epochs, int Batch, int BatchesPerEpoch, long GlobalStep, double LearningRate,
    double Loss, double Accuracy, double EpochLoss, double EpochAccuracy, double ImagesPerSecond);

/// <summary>Reported after every epoch and appended to the metrics CSV.</summary>
/// <param name="Epoch">The epoch, from 1.</param>
/// <param name="GlobalStep">Steps done since the start of training.</param>
/// <param name="LearningRate">The learning rate of the epoch's last step.</param>
/// <param name="TrainLoss">Mean training loss (label-smoothed) over the epoch.</param>
/// <param name="TrainAccuracy">Top-1 training accuracy over the epoch, 0..1.</param>
/// <param name="TestLoss">Mean test cross-entropy (no smoothing), or null without a test set.</param>
/// <param name="TestAccuracy">Top-1 test accuracy, 0..1, or null without a test set.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch.</param>
/// <param name="Seconds">Training time of the epoch (evaluation excluded).</param>
public sealed record EpochMetrics(int Epoch, long GlobalStep, double LearningRate, double TrainLoss, double TrainAccuracy,
    double? TestLoss, double? TestAccuracy, double ImagesPerSecond, double Seconds);

/// <summary>The result of evaluating a model on a dataset.</summary>
/// <param name="Loss">Mean cross-entropy per image (no label smoothing).</param>
/// <param name="Accuracy">Top-1 accuracy, 0..1.</param>
/// <param name="Images">Number of images evaluated.</param>
public sealed record EvaluationResult(double Loss, double Accuracy, int Images);

/// <summary>Where training stands.</summary>
/// <param name="Epoch">The epoch in progress or next to start, from 0; equals the completed epochs when <paramref name="BatchInEpoch"/> is 0.</param>
/// <param name="BatchInEpoch">The next batch of that epoch, from 0.</param>
/// <param name="GlobalStep">Training steps done (the schedule position).</param>
public readonly record struct TrainingPosition(int Epoch, int BatchInEpoch, long GlobalStep);
