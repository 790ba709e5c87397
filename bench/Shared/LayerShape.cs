namespace CeDsl.Bench;

/// <summary>An activation shape N x C x S x S of the CE layer benchmark (linked into each benchmark that uses it).</summary>
public sealed record LayerShape(int Batch, int Channels, int Size)
{
    /// <summary>The layer benchmark's shapes (bench/run-ce-bench.sh): ResNet-50's C = 256 at 56x56 and C = 1024 at 14x14, batch 32.</summary>
    public static readonly LayerShape[] All = [new(32, 256, 56), new(32, 1024, 14)];

    public override string ToString() => $"C{Channels}x{Size}";
}
