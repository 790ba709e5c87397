using static TorchSharp.torch;

namespace CeDsl.IO;

/// <summary>The element types CeDsl can serialize, with their byte sizes and safetensors names.</summary>
internal static class ElementTypes
{
    /// <param name="Name">The safetensors dtype string.</param>
    /// <param name="Type">The TorchSharp element type.</param>
    /// <param name="Size">Bytes per element.</param>
    /// <param name="AlignmentRank">
    /// Position in the safetensors reference's <c>Dtype</c> enum, which is declared in increasing
    /// alignment order; its writer sorts tensors by this rank, descending, then by name.
    /// </param>
    internal readonly record struct SafeTensorsType(string Name, ScalarType Type, int Size, int AlignmentRank);

    private static readonly SafeTensorsType[] SafeTensorsTypes =
    [
        new("BOOL", ScalarType.Bool, 1, 0),
        new("U8", ScalarType.Byte, 1, 1),
        new("I8", ScalarType.Int8, 1, 2),
        new("I16", ScalarType.Int16, 2, 3),
        new("F16", ScalarType.Float16, 2, 4),
        new("BF16", ScalarType.BFloat16, 2, 5),
        new("I32", ScalarType.Int32, 4, 6),
        new("F32", ScalarType.Float32, 4, 7),
        new("C64", ScalarType.ComplexFloat32, 8, 8),
        new("F64", ScalarType.Float64, 8, 9),
        new("I64", ScalarType.Int64, 8, 10),
    ];

    private static readonly Dictionary<string, SafeTensorsType> ByName =
        SafeTensorsTypes.ToDictionary(t => t.Name, StringComparer.Ordinal);

    private static readonly Dictionary<ScalarType, SafeTensorsType> ByType =
        SafeTensorsTypes.ToDictionary(t => t.Type);

    /// <summary>The safetensors dtype names this library reads and writes, for error messages.</summary>
    internal static string SupportedSafeTensorsNames => string.Join(", ", SafeTensorsTypes.Select(t => t.Name));

    internal static bool TryFromSafeTensorsName(string name, out SafeTensorsType type) => ByName.TryGetValue(name, out type);

    internal static bool TryFromScalarType(ScalarType scalarType, out SafeTensorsType type) => ByType.TryGetValue(scalarType, out type);

    /// <summary>Bytes per element of a TorchSharp element type, or null for types that cannot be stored as plain bytes.</summary>
    internal static int? SizeOf(ScalarType type) => type switch
    {
        ScalarType.Bool or ScalarType.Byte or ScalarType.Int8 => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        _ => null,
    };

    /// <summary>Element count of a shape, or null when it does not fit in a long.</summary>
    internal static long? ElementCount(IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (long dimension in shape)
        {
            try
            {
                count = checked(count * dimension);
            }
            catch (OverflowException)
            {
                return null;
            }
        }
        return count;
    }

    internal static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
