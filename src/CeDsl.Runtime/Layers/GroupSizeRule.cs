using System;

namespace CeDsl.Layers;

/// <summary>
/// The group-size rule of the Channel Equilibrium reference: the requested group size is halved
/// (integer division) until it divides the channel count. Pure logic without any TorchSharp
/// dependency, so the source generator compiles the same file.
/// </summary>
public static class GroupSizeRule
{
    /// <summary>Returns the group size actually used for <paramref name="channels"/> channels.</summary>
    /// <example>C = 24, d = 16 gives 8 (3 groups); C = 116 gives 4 (29 groups); C = 232 gives 8 (29 groups).</example>
    /// <exception cref="ArgumentOutOfRangeException">channels or requested is not positive.</exception>
    public static int Resolve(long channels, int requested)
    {
        if (channels <= 0)
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "The channel count must be positive.");
        if (requested <= 0)
            throw new ArgumentOutOfRangeException(nameof(requested), requested, "The requested group size must be positive.");

        int groupSize = requested;
        while (channels % groupSize != 0)
            groupSize /= 2;
        return groupSize;
    }
}
