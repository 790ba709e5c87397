using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// The fixture Fixtures/released/ce_resnet50.safetensors, written by
/// tests/CeDsl.Runtime.Tests/Fixtures/released/make_released_fixtures.py from the authors' released
/// CE-ResNet-50: the recipe of every state-dict tensor (weights from a counter-based generator,
/// per-channel BN statistics stored as float16), a SHA-256 per tensor, the input's recipe and the
/// released network's evaluation logits in float32 and float64. This class rebuilds the state dict
/// and the input from the recipes, exactly as the script does (the generator below is the C# twin of
/// the script's <c>generate</c>), and writes the state dict to a safetensors file once per test run.
/// </summary>
public sealed class ReleasedCeResNet50 : IDisposable
{
    /// <summary>The generator the recipes were written for; any other is refused.</summary>
    private const string Generator = "lowbias32-uniform-v1";

    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "released", "ce_resnet50.safetensors");

    private readonly string directory = Directory.CreateTempSubdirectory("cedsl-released-").FullName;

    public ReleasedCeResNet50()
    {
        var metadata = SafeTensors.LoadMetadata(FixturePath);
        Assert.Equal(Generator, metadata["generator"]);
        Recipes = ParseRecipes(metadata["state"]);
        InputRecipe = ParseRecipe(JsonDocument.Parse(metadata["input"]).RootElement);
        Fixture = SafeTensors.Load(FixturePath);

        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var recipe in Recipes)
                state.Add(recipe.Name, Generate(recipe, Fixture));
            StateDigests = state.ToDictionary(pair => pair.Key, pair => Sha256(pair.Value), StringComparer.Ordinal);
            StatePath = Path.Combine(directory, "ce_resnet50_released.safetensors");
            SafeTensors.Save(state, StatePath);
        }
        finally
        {
            foreach (var tensor in state.Values)
                tensor.Dispose();
        }
    }

    /// <summary>One recipe per state-dict tensor, in the released model's state-dict order.</summary>
    public IReadOnlyList<TensorRecipe> Recipes { get; }

    /// <summary>The recipe of the two 3x224x224 input images.</summary>
    public TensorRecipe InputRecipe { get; }

    /// <summary>The fixture's tensors: <c>logits</c>, <c>logits_float64</c>, and the stored <c>state.*</c> statistics.</summary>
    public IReadOnlyDictionary<string, Tensor> Fixture { get; }

    /// <summary>SHA-256 of the tensors rebuilt here, by state-dict name.</summary>
    public IReadOnlyDictionary<string, string> StateDigests { get; }

    /// <summary>The rebuilt state dict, as a safetensors file (float32, num_batches_tracked int64).</summary>
    public string StatePath { get; }

    /// <summary>The input images, rebuilt from their recipe.</summary>
    public Tensor Input() => Generate(InputRecipe, Fixture);

    public void Dispose()
    {
        foreach (var tensor in Fixture.Values)
            tensor.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    /// <summary>A tensor of the fixture, described by the script's recipe format.</summary>
    /// <param name="Name">State-dict name (empty for the input).</param>
    /// <param name="Dtype">safetensors dtype name: F32 or I64.</param>
    /// <param name="Shape">Shape.</param>
    /// <param name="Kind"><c>uniform</c>, <c>symmetric</c>, <c>constant</c> or <c>stored</c>.</param>
    /// <param name="Seed">Counter-generator key (uniform, symmetric).</param>
    /// <param name="Scale">Multiplies the unit variate (uniform, symmetric).</param>
    /// <param name="Offset">Added to every element (uniform) or to the diagonal (symmetric).</param>
    /// <param name="Value">Every element (constant).</param>
    /// <param name="Stored">Name of the fixture tensor holding the values (stored).</param>
    /// <param name="Sha256">SHA-256 of the tensor's little-endian bytes, as the script computed it.</param>
    public sealed record TensorRecipe(string Name, string Dtype, long[] Shape, string Kind, uint Seed, float Scale, float Offset,
        long Value, string? Stored, string Sha256);

    private static List<TensorRecipe> ParseRecipes(string json)
    {
        using var document = JsonDocument.Parse(json);
        return [.. document.RootElement.EnumerateArray().Select(ParseRecipe)];
    }

    private static TensorRecipe ParseRecipe(JsonElement e)
    {
        string Text(string key) => e.TryGetProperty(key, out var v) ? v.GetString()! : "";
        return new TensorRecipe(
            Name: Text("name"),
            Dtype: e.TryGetProperty("dtype", out var dtype) ? dtype.GetString()! : "F32",
            Shape: [.. e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())],
            Kind: Text("kind"),
            Seed: e.TryGetProperty("seed", out var seed) ? seed.GetUInt32() : 0,
            // The script writes float32 values as the decimal of their float64 widening: the cast is exact.
            Scale: e.TryGetProperty("scale", out var scale) ? (float)scale.GetDouble() : 0f,
            Offset: e.TryGetProperty("offset", out var offset) ? (float)offset.GetDouble() : 0f,
            Value: e.TryGetProperty("value", out var value) ? value.GetInt64() : 0,
            Stored: e.TryGetProperty("tensor", out var stored) ? stored.GetString() : null,
            Sha256: Text("sha256"));
    }

    /// <summary>Chris Wellons' 32-bit integer hash (a bijection on uint32).</summary>
    private static uint LowBias32(uint x)
    {
        x ^= x >> 16;
        x *= 0x7FEB352D;
        x ^= x >> 15;
        x *= 0x846CA68B;
        return x ^ (x >> 16);
    }

    /// <summary>r[i] in [-1, 1), a multiple of 2^-23: the top 24 bits of lowbias32(i XOR lowbias32(seed)), centred.</summary>
    private static float UnitUniform(uint key, uint index) => ((int)(LowBias32(index ^ key) >> 8) - (1 << 23)) * (1f / (1 << 23));

    /// <summary>
    /// The tensor a recipe describes, with the script's float32 arithmetic (each operation rounded):
    /// uniform: offset + scale * r[i]; symmetric (G, d, d): scale * r[g*d*d + min(i,j)*d + max(i,j)]
    /// plus offset on the diagonal; constant: value everywhere; stored: the fixture tensor as float32.
    /// </summary>
    public static Tensor Generate(TensorRecipe recipe, IReadOnlyDictionary<string, Tensor> fixture)
    {
        long count = recipe.Shape.Aggregate(1L, (a, b) => a * b);
        uint key = LowBias32(recipe.Seed);
        switch (recipe.Kind)
        {
            case "constant":
                return full(recipe.Shape, recipe.Value, dtype: ScalarType.Int64);
            case "stored":
                return fixture[recipe.Stored!].to(ScalarType.Float32).reshape(recipe.Shape);
            case "uniform":
            {
                var values = new float[count];
                for (long i = 0; i < count; i++)
                    values[i] = UnitUniform(key, (uint)i) * recipe.Scale + recipe.Offset;
                return tensor(values, recipe.Shape);
            }
            case "symmetric":
            {
                long groups = recipe.Shape[0], d = recipe.Shape[1];
                var values = new float[count];
                for (long g = 0; g < groups; g++)
                    for (long i = 0; i < d; i++)
                        for (long j = 0; j < d; j++)
                        {
                            long counter = g * d * d + Math.Min(i, j) * d + Math.Max(i, j);
                            float v = UnitUniform(key, (uint)counter) * recipe.Scale;
                            values[(g * d + i) * d + j] = i == j ? v + recipe.Offset : v;
                        }
                return tensor(values, recipe.Shape);
            }
            default:
                throw new InvalidDataException($"{FixturePath}: recipe of '{recipe.Name}' has unknown kind '{recipe.Kind}'");
        }
    }

    /// <summary>SHA-256 (lower-case hex) of a CPU tensor's little-endian bytes.</summary>
    public static string Sha256(Tensor t) => t.dtype switch
    {
        ScalarType.Float32 => Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(t.contiguous().data<float>().ToArray().AsSpan()))),
        ScalarType.Int64 => Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(t.contiguous().data<long>().ToArray().AsSpan()))),
        _ => throw new ArgumentException($"no digest for {t.dtype}", nameof(t)),
    };
}
