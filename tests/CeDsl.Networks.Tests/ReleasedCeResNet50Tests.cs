using CeDsl.Folding;
using CeDsl.IO;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// The zoo's CE-ResNet-50 against the authors' released one (<see cref="ReleasedCeResNet50"/>):
/// the same state dict (names, shapes, types), loaded strictly, gives the released network's
/// evaluation logits, folded or not.
/// </summary>
public sealed class ReleasedCeResNet50Tests(ReleasedCeResNet50 released, ITestOutputHelper output) : IClassFixture<ReleasedCeResNet50>
{
    /// <summary>
    /// The float32 bound: PyTorch's own float32 logits are 2.5e-6 (relative to the largest) from its
    /// float64 ones for this network, libtorch's kernels round differently again, and folding changes
    /// the order of operations.
    /// </summary>
    private const double Float32Tolerance = 1e-5;

    private const double Float64Tolerance = 1e-10;

    private static double RelativeError(Tensor actual, Tensor expected) =>
        (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>()
        / expected.to(ScalarType.Float64).abs().max().item<double>();

    [Fact]
    public void TheRecipesRebuildTheReleasedTensorsBitForBit()
    {
        foreach (var recipe in released.Recipes)
            Assert.True(recipe.Sha256 == released.StateDigests[recipe.Name], $"{recipe.Name}: rebuilt tensor differs from the one the script fed the released network");
        using var input = released.Input();
        Assert.Equal(released.InputRecipe.Sha256, ReleasedCeResNet50.Sha256(input));
    }

    [Fact]
    public void CeResNet50HasExactlyTheReleasedStateDict()
    {
        using var network = new CeResNet50();
        var ours = network.state_dict();
        Assert.Equal(released.Recipes.Select(r => r.Name).Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var recipe in released.Recipes)
        {
            Assert.Equal(recipe.Shape, ours[recipe.Name].shape);
            // TorchSharp keeps num_batches_tracked as int64 like PyTorch when no dtype is given.
            Assert.Equal(recipe.Dtype, ours[recipe.Name].dtype switch { ScalarType.Float32 => "F32", ScalarType.Int64 => "I64", var t => t.ToString() });
        }
        Assert.Equal(29_331_926, network.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void CeResNet50GivesTheReleasedLogitsUnfoldedAndFolded()
    {
        using var network = Zoo.Create("ce-resnet50");
        var report = StateDict.Load(network, released.StatePath, strict: true);
        Assert.Equal(released.Recipes.Count, report.Loaded.Count);
        network.eval();
        using var folded = ((IFoldable)network).Fold();

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = released.Input();
        var expected = released.Fixture["logits"];
        double unfoldedError = RelativeError(network.call(input), expected);
        double foldedError = RelativeError(folded.call(input), expected);
        output.WriteLine($"float32 logits, max abs difference relative to the largest logit: unfolded {unfoldedError:E2}, folded {foldedError:E2}");
        Assert.True(unfoldedError <= Float32Tolerance, $"unfolded: {unfoldedError:E2} from the released network's logits");
        Assert.True(foldedError <= Float32Tolerance, $"folded: {foldedError:E2} from the released network's logits");
    }

    [Fact]
    public void CeResNet50InFloat64GivesTheReleasedFloat64LogitsUnfoldedAndFolded()
    {
        using var network = Zoo.Create("ce-resnet50", dtype: ScalarType.Float64);
        StateDict.Load(network, released.StatePath, strict: true);
        network.eval();
        using var folded = ((IFoldable)network).Fold();

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = released.Input().to(ScalarType.Float64);
        var expected = released.Fixture["logits_float64"];
        double unfoldedError = RelativeError(network.call(input), expected);
        double foldedError = RelativeError(folded.call(input), expected);
        output.WriteLine($"float64 logits, max abs difference relative to the largest logit: unfolded {unfoldedError:E2}, folded {foldedError:E2}");
        Assert.True(unfoldedError <= Float64Tolerance, $"unfolded: {unfoldedError:E2} from the released network's float64 logits");
        Assert.True(foldedError <= Float64Tolerance, $"folded: {foldedError:E2} from the released network's float64 logits");
    }
}
