using CeDsl;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Generator.Tests.Equivalence;

/// <summary>
/// Generated modules (compiled into this assembly by the generator) against hand-written TorchSharp
/// twins: the same state-dict keys and shapes, and, with the generated weights copied over, the
/// same outputs, gradients and running statistics in training and the same outputs in evaluation.
/// </summary>
public class EquivalenceTests
{
    private static void AssertEquivalent(nn.Module<Tensor, Tensor> generated, nn.Module<Tensor, Tensor> handWritten, long[] inputShape, int seed)
    {
        var generatedState = generated.state_dict();
        var handState = handWritten.state_dict();
        Assert.Equal(handState.Keys.OrderBy(k => k, StringComparer.Ordinal), generatedState.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (key, tensor) in generatedState)
            Assert.True(tensor.shape.SequenceEqual(handState[key].shape), $"{key}: {string.Join("x", tensor.shape)} vs {string.Join("x", handState[key].shape)}");
        handWritten.load_state_dict(generatedState, strict: true);

        torch.manual_seed(seed);
        using var input = torch.randn(inputShape, dtype: ScalarType.Float32);

        generated.train();
        handWritten.train();
        for (int step = 0; step < 2; step++)
        {
            using var expected = handWritten.call(input);
            using var actual = generated.call(input);
            AssertSame(expected, actual, $"training output, step {step}");

            // The same loss, back-propagated through both: identical gradients.
            using var weights = torch.randn(expected.shape);
            using var expectedLoss = (expected * weights).sum();
            using var actualLoss = (actual * weights).sum();
            generated.zero_grad();
            handWritten.zero_grad();
            expectedLoss.backward();
            actualLoss.backward();
            var handParameters = handWritten.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, parameter) in generated.named_parameters())
                AssertSame(handParameters[name].grad!, parameter.grad!, "gradient of " + name);
        }

        // Running statistics (BN, CE's running_wm and AR.running_scale) moved identically.
        var trainedHand = handWritten.state_dict();
        foreach (var (key, tensor) in generated.state_dict())
            AssertSame(trainedHand[key], tensor, "state " + key);

        generated.eval();
        handWritten.eval();
        using (torch.no_grad())
        {
            using var expected = handWritten.call(input);
            using var actual = generated.call(input);
            AssertSame(expected, actual, "evaluation output");
        }
    }

    private static void AssertSame(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shape {string.Join("x", actual.shape)}, expected {string.Join("x", expected.shape)}");
        using var difference = (expected.to(ScalarType.Float64) - actual.to(ScalarType.Float64)).abs().max();
        Assert.True(difference.item<double>() == 0, $"{what}: max |difference| = {difference.item<double>()}");
    }

    [Theory]
    [InlineData(64, 64, 1)]
    [InlineData(64, 32, 2)]
    [InlineData(128, 32, 1)]
    public void Bottleneck(long inChannels, long width, long stride)
    {
        torch.manual_seed(1);
        using var generated = new DslBottleneck(inChannels, width, stride);
        using var hand = new HandBottleneck(inChannels, width, stride);
        AssertEquivalent(generated, hand, new[] { 4L, inChannels, 8, 8 }, seed: 2);
    }

    [Theory]
    [InlineData(16, 16, 1)]
    [InlineData(16, 24, 2)]
    public void InvertedResidual(long inChannels, long width, long stride)
    {
        torch.manual_seed(3);
        using var generated = new DslInvertedResidual(inChannels, width, stride);
        using var hand = new HandInvertedResidual(inChannels, width, stride, expandRatio: 6);
        AssertEquivalent(generated, hand, new[] { 4L, inChannels, 8, 8 }, seed: 4);
    }

    [Fact]
    public void InvertedResidualWithPaperPlacementHasCeAfterTheDepthwiseNorm()
    {
        using var block = new DslInvertedResidual(16, 16, 1, placement: Placement.Paper);
        var keys = block.state_dict().Keys.ToList();
        Assert.Contains("conv.1.ce.x_weight", keys);
        Assert.Contains("conv.1.ce.AR.fc.0.weight", keys);
        Assert.DoesNotContain(keys, k => k.StartsWith("conv.0.ce", StringComparison.Ordinal) || k.StartsWith("conv.ce", StringComparison.Ordinal));
        Assert.Equal(new long[] { 96 / 16, 16, 16 }, block.state_dict()["conv.1.ce.running_wm"].shape);
    }

    [Fact]
    public void ShuffleDownUnit()
    {
        torch.manual_seed(5);
        using var generated = new DslShuffleDownUnit(24, 58, 2);
        using var hand = new HandShuffleDownUnit(24, 58, 2);
        AssertEquivalent(generated, hand, new[] { 4L, 24, 8, 8 }, seed: 6);
    }

    [Fact]
    public void CifarResNetWithPaperPlacement()
    {
        torch.manual_seed(7);
        using var generated = new DslCifarResNet();
        using var hand = new HandCifarResNet(10);
        Assert.Equal(new long[] { 3, 16, 16 }, DslCifarResNet.InputShape);
        AssertEquivalent(generated, hand, new[] { 4L, 3, 16, 16 }, seed: 8);
    }
}
