using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>The guard against libtorch's defective oneDNN convolutions of some channel counts.</summary>
public class ConvolutionGuardTests
{
    [Theory]
    [InlineData(24, 24, 3, 1, true)]    // input and output tails
    [InlineData(32, 24, 3, 1, true)]    // output tail
    [InlineData(1, 24, 3, 1, true)]     // a stem with 24 outputs (ShuffleNetV2's)
    [InlineData(18, 16, 3, 1, true)]    // input tail above 16
    [InlineData(3, 64, 7, 1, false)]    // ResNet's stem
    [InlineData(12, 16, 3, 1, false)]   // inputs below 16 are exact
    [InlineData(64, 64, 3, 1, false)]
    [InlineData(24, 40, 1, 1, false)]   // 1x1
    [InlineData(24, 24, 3, 24, false)]  // depthwise
    [InlineData(48, 48, 3, 2, false)]   // grouped
    public void Affected_shapes_are_the_non_grouped_larger_than_1x1_ones_with_channel_tails(long inChannels, long outChannels, long kernel, long groups, bool affected)
    {
        using var convolution = nn.Conv2d(inChannels, outChannels, kernel, groups: groups);

        Assert.Equal(affected, ConvolutionGuard.HasAffectedShape(convolution));
    }

    [Fact]
    public void Affected_convolutions_are_found_anywhere_in_a_network()
    {
        using var network = nn.Sequential(
            ("stem", nn.Conv2d(1, 24, 3)),
            ("body", nn.Sequential(("0", nn.Conv2d(24, 32, 1)), ("1", nn.Conv2d(32, 32, 3)), ("2", nn.Conv2d(32, 40, 3)))));

        Assert.Equal(["stem", "body.2"], ConvolutionGuard.AffectedConvolutions(network));
    }

    [Fact]
    public void A_convolution_on_its_own_is_found_too()
    {
        using var convolution = nn.Conv2d(1, 24, 3);

        Assert.Single(ConvolutionGuard.AffectedConvolutions(convolution));
    }

    [Fact]
    public void After_protecting_a_network_its_float32_convolutions_and_gradients_equal_float64()
    {
        using var network = nn.Sequential(nn.Conv2d(24, 24, 3, padding: 1, bias: false), nn.ReLU(), nn.Conv2d(24, 40, 3, padding: 1, bias: false));
        ConvolutionGuard.Protect(network);
        using var network64 = nn.Sequential(nn.Conv2d(24, 24, 3, padding: 1, bias: false, dtype: float64), nn.ReLU(), nn.Conv2d(24, 40, 3, padding: 1, bias: false, dtype: float64));
        network64.load_state_dict(network.state_dict().ToDictionary(p => p.Key, p => p.Value.to(float64)));
        var input = randn([4, 24, 12, 12], generator: new Generator(5));

        network.call(input).square().sum().backward();
        network64.call(input.to(float64)).square().sum().backward();

        foreach (var ((name, parameter), (_, parameter64)) in network.named_parameters().Zip(network64.named_parameters()))
        {
            double error = ((parameter.grad!.to(float64) - parameter64.grad!).abs().max() / parameter64.grad!.abs().max()).item<double>();
            Assert.True(error < 1e-4, $"gradient of {name}: relative error {error:G3}");
        }
        double outputError = ((network.call(input).to(float64) - network64.call(input.to(float64))).abs().max()).item<double>();
        Assert.True(outputError < 1e-3, $"output error {outputError:G3}");
    }
}
