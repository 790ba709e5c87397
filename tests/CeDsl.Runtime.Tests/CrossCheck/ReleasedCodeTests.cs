using System.Globalization;
using CeDsl.Layers;
using CeDsl.Runtime.Tests.Layers;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.CrossCheck;

/// <summary>
/// The layers against the authors' released CE code itself (Tangshitao/CENet, devkit/ops/CE_module.py),
/// run in PyTorch by Fixtures/released/make_released_fixtures.py: training output, input and
/// parameter gradients, running statistics after three training steps and evaluation output, in
/// float64, to 1e-10. Cases: the residual blocks' group size 16 (C = 64), halved (C = 24 -> 8) and
/// quartered (C = 116 -> 4), the ResNet stem's 64 (one group), the 2x2-pooled covariance, BD alone
/// (the released CE with lambda == 1) and the released AdaptiveReweight (AII).
/// </summary>
public sealed class ReleasedCodeTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-10;

    /// <summary>Every case on the CPU kernels and on libtorch's operators (<see cref="CePath"/>); pooling runs on the operators only.</summary>
    [Theory]
    [InlineData("ce_c64_g16.safetensors", 64, 16, false, CePath.Kernels)]
    [InlineData("ce_c64_g16.safetensors", 64, 16, false, CePath.Operators)]
    [InlineData("ce_c24_g16_halved.safetensors", 24, 16, false, CePath.Kernels)]
    [InlineData("ce_c24_g16_halved.safetensors", 24, 16, false, CePath.Operators)]
    [InlineData("ce_c64_g64_stem.safetensors", 64, 64, false, CePath.Kernels)]
    [InlineData("ce_c64_g64_stem.safetensors", 64, 64, false, CePath.Operators)]
    [InlineData("ce_c116_g16_quartered.safetensors", 116, 16, false, CePath.Kernels)]
    [InlineData("ce_c116_g16_quartered.safetensors", 116, 16, false, CePath.Operators)]
    [InlineData("ce_c32_g16_pool.safetensors", 32, 16, true, CePath.Operators)]
    public void ChannelEquilibrium_computes_what_the_released_code_computes(string file, long channels, int groupSize, bool pool, CePath path)
    {
        using var module = new ChannelEquilibrium(channels, groupSize, pool: pool, dtype: ScalarType.Float64).On(path);
        Replay(module, file, fixture =>
        {
            Assert.Equal(groupSize.ToString(CultureInfo.InvariantCulture), fixture.Metadata["group_size"]);
            Assert.Equal(fixture.Metadata["resolved_group_size"], module.GroupSize.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(fixture.Metadata["groups"], module.Groups.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(pool ? "true" : "false", fixture.Metadata["pool"]);
        });
        module.AssertRanOn(path);
    }

    [Fact]
    public void BatchDecorrelation_computes_what_the_released_code_computes_with_lambda_one()
    {
        using var module = new BatchDecorrelation(24, groupSize: 16, dtype: ScalarType.Float64);
        Replay(module, "bd_c24_g16_halved.safetensors", fixture =>
            Assert.Equal(fixture.Metadata["resolved_group_size"], module.GroupSize.ToString(CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void AdaptiveInstanceInverse_computes_what_the_released_AdaptiveReweight_computes()
    {
        using var module = new AdaptiveInstanceInverse(32, reduction: 4, dtype: ScalarType.Float64);
        Replay(module, "aii_c32.safetensors", _ => { });
    }

    private void Replay(Module<Tensor, Tensor> module, string file, Action<PyTorchFixture> checkConstruction)
    {
        using var scope = NewDisposeScope();
        var fixture = PyTorchFixture.Load("released", file, ScalarType.Float64, Tolerance, output);
        checkConstruction(fixture);
        fixture.Replay(module);
    }
}
