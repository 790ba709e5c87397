using CeDsl.Folding;
using CeDsl.Layers;
using CeDsl.Platform;
using TorchSharp;
using static TorchSharp.torch;
using Before = CeDsl.Networks.Tests.GeneratedBefore;

namespace CeDsl.Networks.Tests;

/// <summary>
/// The zoo's modules as the current generator makes them are bit for bit the modules the generator made
/// before its pipeline was rewritten (the frozen sources in <c>GeneratedBefore/</c>): the same initial
/// state dict from the same seed, then the same outputs, gradients, running statistics and folded modules.
/// Both run in this process, so the comparison does not depend on the CPU's rounding; alone, since the
/// modules draw their initial weights from the process's generator, which a test running alongside would also draw from.
/// </summary>
[Collection(Name)]
public class GeneratedBeforeTests
{
    public const string Name = "Alone: seeded construction";
    private sealed record Case(Func<ScalarType, nn.Module<Tensor, Tensor>> Before, Func<ScalarType, nn.Module<Tensor, Tensor>> Now, long Side, ScalarType Type);

    // ResNet-50's strided 1x1 backward can crash oneDNN on some CPUs: float64 keeps it out of oneDNN.
    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["ce-resnet20"] = new(t => new Before.CeResNet20(dtype: t), t => new CeResNet20(dtype: t), 32, ScalarType.Float32),
        ["bd-resnet20"] = new(t => new Before.BdResNet20(dtype: t), t => new BdResNet20(dtype: t), 32, ScalarType.Float32),
        ["aii-resnet20"] = new(t => new Before.AiiResNet20(dtype: t), t => new AiiResNet20(dtype: t), 32, ScalarType.Float32),
        ["se-resnet20"] = new(t => new Before.SeResNet20(dtype: t), t => new SeResNet20(dtype: t), 32, ScalarType.Float32),
        ["ce-mobilenetv2"] = new(t => new Before.CeMobileNetV2(dtype: t), t => new CeMobileNetV2(dtype: t), 64, ScalarType.Float32),
        ["ce-shufflenetv2-0.5x"] = new(t => new Before.CeShuffleNetV2X05(dtype: t), t => new CeShuffleNetV2X05(dtype: t), 64, ScalarType.Float32),
        ["ce-vgg16-bn"] = new(t => new Before.CeVgg16Bn(dtype: t), t => new CeVgg16Bn(dtype: t), 32, ScalarType.Float32),
        ["preresnet29-sconv"] = new(t => new Before.SelectivePreResNet29(dtype: t), t => new SelectivePreResNet29(dtype: t), 32, ScalarType.Float32),
        ["ce-ln-resnet50"] = new(t => new Before.CeLnResNet50(dtype: t), t => new CeLnResNet50(dtype: t), 32, ScalarType.Float64),
    };

    public static TheoryData<string> Names => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void TheGeneratedModuleIsBitForBitTheOneTheEarlierGeneratorMade(string name)
    {
        var (createBefore, createNow, side, type) = Cases[name];
        manual_seed(5);
        using var before = createBefore(type);
        // The two statements generated constructors end with since the oneDNN guard (after the frozen output was made).
        LayerPaths.Record(before);
        OneDnnGuard.Protect(before);
        manual_seed(5);
        using var now = createNow(type);
        AssertSameState(name + " (initial)", before, now);

        manual_seed(9);
        using var input = randn([2, 3, side, side], dtype: type) * 2 + 0.5;
        using var weights = randn([2, 1000], dtype: type);
        Step(before, input, weights);
        Step(now, input, weights);
        AssertSameState(name + " (after a training step)", before, now);

        before.eval();
        now.eval();
        using (no_grad())
        {
            using var expected = before.call(input);
            using var actual = now.call(input);
            AssertEqual(name + " evaluation output", expected, actual);
        }

        using var foldedBefore = ((IFoldable)before).Fold();
        using var foldedNow = ((IFoldable)now).Fold();
        AssertSameState(name + " (folded)", foldedBefore, foldedNow);
        using (no_grad())
        {
            using var expected = foldedBefore.call(input);
            using var actual = foldedNow.call(input);
            AssertEqual(name + " folded output", expected, actual);
        }
    }

    /// <summary>A training-mode forward and backward, then an SGD step, then another forward that updates the running statistics.</summary>
    private static void Step(nn.Module<Tensor, Tensor> network, Tensor input, Tensor weights)
    {
        network.train();
        manual_seed(13);
        using (var scope = NewDisposeScope())
        {
            var output = network.call(input);
            (output * weights[.., ..(int)output.shape[1]]).sum().backward();
        }
        using (no_grad())
        {
            foreach (var parameter in network.parameters())
            {
                if (parameter.grad is { } gradient) parameter.sub_(gradient * 0.001);
            }
            manual_seed(17);
            network.call(input).Dispose();
        }
    }

    private static void AssertSameState(string what, nn.Module before, nn.Module now)
    {
        var expected = before.state_dict();
        var actual = now.state_dict();
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (key, tensor) in expected)
            AssertEqual($"{what} '{key}'", tensor, actual[key]);
        var expectedGradients = before.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        foreach (var (key, parameter) in now.named_parameters())
        {
            var gradient = expectedGradients[key];
            Assert.Equal(gradient is null, parameter.grad is null);
            if (gradient is not null) AssertEqual($"{what} gradient of '{key}'", gradient, parameter.grad!);
        }
    }

    private static void AssertEqual(string what, Tensor expected, Tensor actual)
    {
        Assert.True(expected.dtype == actual.dtype && expected.shape.SequenceEqual(actual.shape), $"{what}: {actual.dtype} [{string.Join(", ", actual.shape)}], before {expected.dtype} [{string.Join(", ", expected.shape)}]");
        Assert.True(expected.equal(actual).all().item<bool>(), $"{what} differs from the earlier generator's module");
    }
}

[CollectionDefinition(GeneratedBeforeTests.Name, DisableParallelization = true)]
public sealed class SeededConstructionCollection;
