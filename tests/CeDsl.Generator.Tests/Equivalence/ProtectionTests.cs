using CeDsl.Platform;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Generator.Tests.Equivalence;

/// <summary>
/// A module declared with the DSL is safe without its user knowing about oneDNN: its constructor protects it.
/// This test process settles oneDNN at start-up (OneDnnGuardAtStartup), so the float32 comparison alone would
/// hold here even for an unprotected module; the protection itself is what <see cref="OneDnnGuard.IsProtected"/> tells.
/// </summary>
public class ProtectionTests
{
    [Fact]
    public void A_generated_network_protects_itself_and_computes_float32_outputs_and_gradients_within_1e_4_of_float64()
    {
        using var scope = NewDisposeScope();
        using var network = new DslNarrowNet();
        using var network64 = new DslNarrowNet(dtype: float64);
        network64.load_state_dict(network.state_dict().ToDictionary(p => p.Key, p => p.Value.is_floating_point() ? p.Value.to(float64) : p.Value));
        var input = randn([4, 3, 12, 12], generator: new torch.Generator(11));

        Assert.True(network.modules().Prepend(network).All(OneDnnGuard.IsProtected));
        Assert.Equal(2, OneDnnGuard.ChannelTailConvolutions(network).Count);
        Assert.Single(network.modules().OfType<Conv2d>(), OneDnnGuard.IsStridedPointwise);

        var output = network.call(input);
        var output64 = network64.call(input.to(float64));
        output.square().sum().backward();
        output64.square().sum().backward();

        Assert.True(RelativeError(output, output64) < 1e-4, $"output: relative error {RelativeError(output, output64):G3}");
        foreach (var ((name, parameter), (_, parameter64)) in network.named_parameters().Zip(network64.named_parameters()))
        {
            double error = RelativeError(parameter.grad!, parameter64.grad!);
            Assert.True(error < 1e-4, $"gradient of {name}: relative error {error:G3}");
        }
    }

    [Fact]
    public void A_generated_block_protects_itself_too()
    {
        using var block = new DslBottleneck(64, 32, stride: 2);

        Assert.True(block.modules().Prepend(block).All(OneDnnGuard.IsProtected));
    }

    private static double RelativeError(Tensor value, Tensor reference) =>
        ((value.to(float64) - reference).abs().max() / reference.abs().max()).item<double>();
}
