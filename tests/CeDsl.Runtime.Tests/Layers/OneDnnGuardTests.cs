using CeDsl.Layers;
using CeDsl.Selective;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>
/// The guard against libtorch's defective oneDNN: wrong convolutions with channel tails, and the crash in the
/// backward pass of strided 1x1 convolutions. The crash itself is tested where it cannot take the test host
/// down, in a child process (CeDsl.Cli.Tests' NativeBackendTests); here only shapes that never crashed run.
/// </summary>
public class OneDnnGuardTests
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
    public void Channel_tails_are_the_non_grouped_larger_than_1x1_convolutions_with_counts_not_a_multiple_of_16(long inChannels, long outChannels, long kernel, long groups, bool tail)
    {
        using var convolution = nn.Conv2d(inChannels, outChannels, kernel, groups: groups);

        Assert.Equal(tail, OneDnnGuard.HasChannelTail(convolution));
    }

    [Fact]
    public void Channel_tails_are_found_anywhere_in_a_network()
    {
        using var network = nn.Sequential(
            ("stem", nn.Conv2d(1, 24, 3)),
            ("body", nn.Sequential(("0", nn.Conv2d(24, 32, 1)), ("1", nn.Conv2d(32, 32, 3)), ("2", nn.Conv2d(32, 40, 3)))));

        Assert.Equal(["stem", "body.2"], OneDnnGuard.ChannelTailConvolutions(network));
    }

    [Fact]
    public void A_convolution_on_its_own_is_found_too()
    {
        using var convolution = nn.Conv2d(1, 24, 3);

        Assert.Single(OneDnnGuard.ChannelTailConvolutions(convolution));
    }

    [Fact]
    public void After_protecting_a_network_its_float32_convolutions_and_gradients_equal_float64()
    {
        using var network = nn.Sequential(nn.Conv2d(24, 24, 3, padding: 1, bias: false), nn.ReLU(), nn.Conv2d(24, 40, 3, padding: 1, bias: false));
        OneDnnGuard.Protect(network);
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

    [Theory]
    [InlineData(1, 2, true)]
    [InlineData(1, 3, true)]
    [InlineData(1, 1, false)]
    [InlineData(3, 2, false)]
    public void Strided_pointwise_convolutions_are_the_1x1_ones_with_a_stride_above_1(long kernel, long stride, bool strided)
    {
        using var convolution = nn.Conv2d(8, 16, kernel, stride: stride);

        Assert.Equal(strided, OneDnnGuard.IsStridedPointwise(convolution));
    }

    [Fact]
    public void A_stride_in_one_direction_only_counts_too()
    {
        using var convolution = nn.Conv2d(8, 16, (1, 1), stride: (1, 2));

        Assert.True(OneDnnGuard.IsStridedPointwise(convolution));
    }

    /// <summary>
    /// The subsampled form against the strided convolution in float64, which oneDNN never computes: outputs and
    /// the gradients of the input, the weight and the bias, with padding, groups, odd sizes and strides 2 and 3.
    /// </summary>
    [Theory]
    [InlineData(64, 128, 2, 0, 1, 15, 3)]
    [InlineData(256, 512, 2, 0, 1, 8, 2)]
    [InlineData(24, 40, 3, 0, 1, 17, 2)]
    [InlineData(32, 64, 2, 1, 1, 9, 2)]
    [InlineData(32, 64, 2, 0, 4, 10, 2)]
    [InlineData(16, 32, 2, 0, 1, 1, 2)]
    public void The_subsampled_form_computes_the_strided_convolution_and_its_gradients(long inChannels, long outChannels, long stride, long padding, long groups, long size, long batch)
    {
        using var scope = NewDisposeScope();
        using var convolution = nn.Conv2d(inChannels, outChannels, 1, stride: stride, padding: padding, groups: groups);
        using var convolution64 = nn.Conv2d(inChannels, outChannels, 1, stride: stride, padding: padding, groups: groups, dtype: float64);
        convolution64.load_state_dict(convolution.state_dict().ToDictionary(p => p.Key, p => p.Value.to(float64)));
        var input = randn([batch, inChannels, size, size], generator: new Generator(3)).requires_grad_();
        var input64 = input.detach().to(float64).requires_grad_();
        var outputGradient = randn([batch, outChannels, (size + 2 * padding - 1) / stride + 1, (size + 2 * padding - 1) / stride + 1], generator: new Generator(4));

        var output = OneDnnGuard.ConvolveSubsampled(convolution, input);
        output.backward([outputGradient]);
        var output64 = convolution64.forward(input64);
        output64.backward([outputGradient.to(float64)]);

        AssertClose(output64, output, "output");
        AssertClose(input64.grad!, input.grad!, "input gradient");
        AssertClose(convolution64.weight.grad!, convolution.weight.grad!, "weight gradient");
        AssertClose(convolution64.bias!.grad!, convolution.bias!.grad!, "bias gradient");
    }

    [Fact]
    public void A_protected_strided_convolution_trains_through_the_subsampled_form_and_keeps_its_module_and_state()
    {
        using var scope = NewDisposeScope();
        using var network = nn.Sequential(("0", nn.Conv2d(64, 128, 1, stride: 2, bias: false)), ("1", nn.BatchNorm2d(128)));
        var convolution = (Conv2d)network.children().First();
        var keys = network.state_dict().Keys.ToList();
        var input = randn([3, 64, 15, 15], generator: new Generator(7)).requires_grad_();

        OneDnnGuard.Protect(network);
        var output = convolution.call(input);

        Assert.True(OneDnnGuard.IsProtected(network));
        Assert.True(OneDnnGuard.IsProtected(convolution));
        Assert.Equal(new long[] { 2, 2 }, convolution.stride);
        Assert.Equal(keys, network.state_dict().Keys.ToList());
        Assert.IsType<Conv2d>(network.children().First());
        Assert.True(output.requires_grad);
        Assert.True(output.eq(OneDnnGuard.ConvolveSubsampled(convolution, input)).all().item<bool>());
    }

    [Fact]
    public void Protecting_twice_or_a_network_holding_a_protected_module_is_harmless()
    {
        using var scope = NewDisposeScope();
        using var block = nn.Sequential(("0", nn.Conv2d(16, 32, 1, stride: 2)));
        OneDnnGuard.Protect(block);
        using var network = nn.Sequential(("downsample", block), ("head", nn.Conv2d(32, 8, 1, stride: 2)));
        OneDnnGuard.Protect(network);
        OneDnnGuard.Protect(network);
        var input = randn([2, 16, 8, 8], generator: new Generator(9)).requires_grad_();

        var output = network.call(input);
        output.sum().backward();

        Assert.Equal(new long[] { 2, 8, 2, 2 }, output.shape);
        Assert.True(network.modules().All(OneDnnGuard.IsProtected));
    }

    [Fact]
    public void The_convolution_inside_a_selective_convolution_is_protected_with_it()
    {
        using var layer = new SelectiveConv2d(16, 32, 1, stride: 2);

        OneDnnGuard.Protect(layer);

        Assert.True(OneDnnGuard.IsStridedPointwise(layer.Conv));
        Assert.True(OneDnnGuard.IsProtected(layer.Conv));
    }

    [Fact]
    public void A_module_nobody_protected_is_not_protected()
    {
        using var convolution = nn.Conv2d(16, 32, 1, stride: 2);

        Assert.False(OneDnnGuard.IsProtected(convolution));
    }

    private static void AssertClose(Tensor expected64, Tensor actual, string what)
    {
        double error = ((actual.to(float64) - expected64).abs().max() / expected64.abs().max()).item<double>();
        Assert.True(error < 1e-5, $"{what}: relative error {error:G3} against float64");
    }
}
