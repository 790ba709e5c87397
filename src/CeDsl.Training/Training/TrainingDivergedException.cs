namespace CeDsl.Training;

/// <summary>
/// Training produced a non-finite loss, parameter, buffer, momentum buffer or activation: the run has
/// diverged (usually a learning rate too high for the network). The trainer stops before the
/// divergence reaches a checkpoint, so the last checkpoint written holds the last finite state.
/// The message names what is not finite and where training stood.
/// </summary>
public sealed class TrainingDivergedException(string message, TrainingPosition position, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Where training stood when the divergence was found.</summary>
    public TrainingPosition Position { get; } = position;
}
