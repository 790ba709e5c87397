using System.Globalization;

namespace CeDsl.Architecture;

/// <summary>
/// The shape of one sample's tensor, without the batch dimension: (C, H, W) for a feature map,
/// (F) for flattened features. Compared by value.
/// </summary>
public sealed class TensorShape : IEquatable<TensorShape>
{
    private readonly long[] dimensions;

    /// <summary>A shape of the given sizes.</summary>
    /// <exception cref="ArgumentException">No size is given, or a size is not positive.</exception>
    public TensorShape(params long[] dimensions)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        if (dimensions.Length == 0 || dimensions.Any(d => d <= 0))
            throw new ArgumentException($"A tensor shape needs at least one size, all positive; got ({string.Join(", ", dimensions)}).", nameof(dimensions));
        this.dimensions = (long[])dimensions.Clone();
    }

    /// <summary>A feature map of <paramref name="channels"/> x <paramref name="height"/> x <paramref name="width"/>.</summary>
    public static TensorShape Map(long channels, long height, long width) => new(channels, height, width);

    /// <summary>Flattened features.</summary>
    public static TensorShape Features(long features) => new(features);

    /// <summary>The sizes, outermost first.</summary>
    public IReadOnlyList<long> Dimensions => dimensions;

    /// <summary>The number of dimensions (3 for a feature map, 1 for features).</summary>
    public int Rank => dimensions.Length;

    /// <summary>True for (C, H, W).</summary>
    public bool IsMap => Rank == 3;

    /// <summary>C of a feature map, F of features.</summary>
    public long Channels => dimensions[0];

    /// <summary>H of a feature map.</summary>
    /// <exception cref="InvalidOperationException">The shape is not a feature map.</exception>
    public long Height => IsMap ? dimensions[1] : throw new InvalidOperationException($"{this} is not a feature map (C, H, W).");

    /// <summary>W of a feature map.</summary>
    /// <exception cref="InvalidOperationException">The shape is not a feature map.</exception>
    public long Width => IsMap ? dimensions[2] : throw new InvalidOperationException($"{this} is not a feature map (C, H, W).");

    /// <summary>The number of elements.</summary>
    public long Elements => dimensions.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape with the batch dimension in front, e.g. for <c>torch.zeros</c>.</summary>
    public long[] WithBatch(long batch) => [batch, .. dimensions];

    /// <inheritdoc/>
    public bool Equals(TensorShape? other) => other is not null && dimensions.AsSpan().SequenceEqual(other.dimensions);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as TensorShape);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var dimension in dimensions) hash.Add(dimension);
        return hash.ToHashCode();
    }

    /// <summary>"3x32x32", "10".</summary>
    public override string ToString() => string.Join("x", dimensions.Select(d => d.ToString(CultureInfo.InvariantCulture)));
}
