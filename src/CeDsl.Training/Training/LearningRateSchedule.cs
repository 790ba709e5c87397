using System.Globalization;

namespace CeDsl.Training;

/// <summary>
/// A learning-rate schedule: the factor by which every parameter group's base learning rate is
/// multiplied, as a function of the (fractional) number of epochs done, step / steps per epoch.
/// The trainer evaluates it before every step, so smooth schedules change per iteration.
/// </summary>
public abstract class LearningRateSchedule
{
    /// <summary>The factor after <paramref name="epoch"/> epochs (fractional: step / steps per epoch).</summary>
    public abstract double Factor(double epoch);

    /// <summary>A short invariant description, e.g. "cosine(30)", stored in checkpoints.</summary>
    public abstract string Description { get; }

    /// <inheritdoc />
    public override string ToString() => Description;

    /// <summary>Factor 1 throughout.</summary>
    public static LearningRateSchedule Constant() => new ConstantSchedule();

    /// <summary>
    /// Cosine annealing over <paramref name="epochs"/>, per iteration:
    /// min + (1 - min) (1 + cos(pi e / epochs)) / 2, and min after the last epoch.
    /// </summary>
    public static LearningRateSchedule Cosine(double epochs, double minFactor = 0)
    {
        if (!(epochs > 0))
            throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "Cosine schedule needs a positive number of epochs.");
        if (minFactor is < 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(minFactor), minFactor, "Cosine minimum factor must be in [0, 1].");
        return new CosineSchedule(epochs, minFactor);
    }

    /// <summary>
    /// Step decay: multiplied by <paramref name="gamma"/> at each milestone epoch (like PyTorch's
    /// MultiStepLR stepped per epoch: milestone 30 means epochs 30, 31, ... counted from 0 are decayed).
    /// </summary>
    public static LearningRateSchedule Step(IReadOnlyList<int> milestones, double gamma = 0.1)
    {
        if (milestones.Count == 0 || milestones.Any(m => m <= 0) || milestones.Zip(milestones.Skip(1)).Any(p => p.First >= p.Second))
            throw new ArgumentException($"Step milestones must be positive and increasing, got [{string.Join(", ", milestones)}].", nameof(milestones));
        if (!(gamma > 0))
            throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "Step decay factor must be positive.");
        return new StepSchedule([.. milestones], gamma);
    }

    /// <summary>
    /// This schedule multiplied by a linear warm-up over the first <paramref name="epochs"/> (fractional):
    /// from <paramref name="startFactor"/> at step 0 up to 1 (PyTorch LinearLR, per iteration). The
    /// inner schedule keeps its own clock, so step milestones still count from the start of training.
    /// </summary>
    public LearningRateSchedule WithLinearWarmup(double epochs, double startFactor = 0.1)
    {
        if (!(epochs > 0))
            throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "Warm-up needs a positive number of epochs.");
        if (startFactor is < 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(startFactor), startFactor, "Warm-up start factor must be in [0, 1].");
        return new WarmupSchedule(this, epochs, startFactor);
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private sealed class ConstantSchedule : LearningRateSchedule
    {
        public override double Factor(double epoch) => 1;

        public override string Description => "constant";
    }

    private sealed class CosineSchedule(double epochs, double minFactor) : LearningRateSchedule
    {
        public override double Factor(double epoch) =>
            minFactor + (1 - minFactor) * (1 + Math.Cos(Math.PI * Math.Clamp(epoch, 0, epochs) / epochs)) / 2;

        public override string Description => minFactor == 0 ? $"cosine({Format(epochs)})" : $"cosine({Format(epochs)}, min {Format(minFactor)})";
    }

    private sealed class StepSchedule(int[] milestones, double gamma) : LearningRateSchedule
    {
        public override double Factor(double epoch)
        {
            double completed = Math.Floor(epoch);
            return Math.Pow(gamma, milestones.Count(m => m <= completed));
        }

        public override string Description => $"step([{string.Join(", ", milestones)}], x{Format(gamma)})";
    }

    private sealed class WarmupSchedule(LearningRateSchedule inner, double epochs, double startFactor) : LearningRateSchedule
    {
        public override double Factor(double epoch) =>
            inner.Factor(epoch) * (epoch < epochs ? startFactor + (1 - startFactor) * Math.Max(epoch, 0) / epochs : 1);

        public override string Description => $"warmup({Format(epochs)}, from {Format(startFactor)}) * {inner.Description}";
    }
}
