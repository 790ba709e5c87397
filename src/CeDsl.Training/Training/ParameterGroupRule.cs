using TorchSharp.Modules;

namespace CeDsl.Training;

/// <summary>
/// Puts the parameters it matches in their own SGD parameter group with their own weight decay.
/// A parameter belongs to the first rule that matches it; the others use the default decay.
/// </summary>
/// <param name="Name">The group's name, stored in checkpoints.</param>
/// <param name="Matches">Whether a parameter (by its dotted name, e.g. "layer1.0.bn1.bias") belongs to the group.</param>
/// <param name="WeightDecay">The group's L2 weight decay.</param>
public sealed record ParameterGroupRule(string Name, Func<string, Parameter, bool> Matches, double WeightDecay)
{
    /// <summary>Biases and normalisation scales (every 1-dimensional parameter) without decay.</summary>
    public static ParameterGroupRule NoDecayOnOneDimensional() => new("no_decay_1d", (_, p) => p.dim() == 1, 0);

    /// <summary>
    /// Parameters whose name ends with <paramref name="suffix"/>, e.g. ("_bias", 1e-5) for the spatial
    /// shifts of selective convolutions.
    /// </summary>
    public static ParameterGroupRule NameEndsWith(string suffix, double weightDecay) =>
        new($"*{suffix}", (name, _) => name.EndsWith(suffix, StringComparison.Ordinal), weightDecay);
}

/// <summary>One SGD parameter group as built for a model.</summary>
/// <param name="Name">"default" or the rule's name.</param>
/// <param name="WeightDecay">The group's weight decay.</param>
/// <param name="ParameterNames">The dotted names of its parameters, in model order.</param>
public sealed record ParameterGroupInfo(string Name, double WeightDecay, IReadOnlyList<string> ParameterNames);
