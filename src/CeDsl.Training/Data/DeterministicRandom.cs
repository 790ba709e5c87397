namespace CeDsl.Data;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny generator whose sequence is fixed by its
/// seed on every platform and .NET version, unlike <see cref="Random"/>. Streams for
/// (seed, epoch, batch) are derived by mixing, so any batch can be reproduced without replaying
/// the ones before it.
/// </summary>
internal struct DeterministicRandom
{
    private ulong _state;

    public DeterministicRandom(ulong seed, params ReadOnlySpan<ulong> stream)
    {
        _state = seed;
        foreach (ulong part in stream)
            _state = Mix(_state ^ Mix(part + 0x9E3779B97F4A7C15UL));
    }

    public ulong NextUInt64() => Mix(_state += 0x9E3779B97F4A7C15UL);

    /// <summary>A value in [0, <paramref name="exclusiveMax"/>) (Lemire's multiply-shift; bias below 2^-32).</summary>
    public int NextInt(int exclusiveMax) => (int)((UInt128)NextUInt64() * (ulong)exclusiveMax >> 64);

    public bool NextBool() => (NextUInt64() >> 63) != 0;

    /// <summary>Fisher-Yates shuffle of 0..count-1.</summary>
    public int[] Permutation(int count)
    {
        var permutation = new int[count];
        for (int i = 0; i < count; i++)
            permutation[i] = i;
        for (int i = count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (permutation[i], permutation[j]) = (permutation[j], permutation[i]);
        }
        return permutation;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
