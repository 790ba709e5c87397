using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>The zoo's baselines have torchvision's state-dict keys; CE-ResNet-50 the reference's CE placement.</summary>
public class TorchvisionKeyTests
{
    private static long Parameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    [Fact]
    public void ResNet50HasTorchvisionsParameterCountAndKeys()
    {
        using var network = new ResNet50();
        Assert.Equal(25_557_032, Parameters(network));
        var keys = network.state_dict().Keys.ToHashSet();
        Assert.Contains("conv1.weight", keys);
        Assert.Contains("bn1.num_batches_tracked", keys);
        Assert.Contains("layer1.0.downsample.0.weight", keys);
        Assert.Contains("layer1.0.downsample.1.running_var", keys);
        Assert.DoesNotContain("layer1.1.downsample.0.weight", keys);
        Assert.Contains("layer4.2.conv3.weight", keys);
        Assert.Contains("fc.bias", keys);
        Assert.DoesNotContain(keys, k => k.Contains(".ce", StringComparison.Ordinal) || k.StartsWith("ce", StringComparison.Ordinal));
        // torchvision's ResNet-50 state dict: 320 entries (161 parameters, 159 buffers).
        Assert.Equal(320, keys.Count);
    }

    [Fact]
    public void CeResNet50HasTheReferenceParameterCountAndCePlacement()
    {
        using var network = new CeResNet50();
        Assert.Equal(29_331_926, Parameters(network));
        var state = network.state_dict();
        Assert.Equal(new long[] { 1, 64, 64 }, state["ce1.running_wm"].shape);
        Assert.Equal(new long[] { 16, 16, 16 }, state["layer1.0.ce.running_wm"].shape);
        Assert.Equal(new long[] { 1024, 256 }, state["layer3.5.ce.AR.fc.3.weight"].shape);
        var ceBlocks = state.Keys.Where(k => k.EndsWith("x_weight", StringComparison.Ordinal)).ToList();
        Assert.Equal(14, ceBlocks.Count);
        Assert.DoesNotContain(ceBlocks, k => k.StartsWith("layer4", StringComparison.Ordinal));
    }

    [Fact]
    public void MobileNetV2HasTorchvisionsParameterCountAndKeys()
    {
        using var network = new MobileNetV2();
        Assert.Equal(3_504_872, Parameters(network));
        var keys = network.state_dict().Keys.ToHashSet();
        foreach (var key in new[]
        {
            "features.0.0.weight", "features.0.1.running_mean", "features.1.conv.0.0.weight", "features.1.conv.1.weight", "features.1.conv.2.bias",
            "features.2.conv.0.0.weight", "features.2.conv.1.0.weight", "features.2.conv.2.weight", "features.2.conv.3.running_var",
            "features.17.conv.3.weight", "features.18.0.weight", "features.18.1.bias", "classifier.1.weight", "classifier.1.bias",
        })
        {
            Assert.Contains(key, keys);
        }
        // torchvision's MobileNetV2 state dict: 314 entries.
        Assert.Equal(314, keys.Count);

        using var input = torch.randn(2, 3, 224, 224);
        network.eval();
        using var output = network.call(input);
        Assert.Equal(new long[] { 2, 1000 }, output.shape);
    }

    [Fact]
    public void ShuffleNetV2HasTorchvisionsParameterCountAndKeys()
    {
        using var network = new ShuffleNetV2X10();
        Assert.Equal(2_278_604, Parameters(network));
        var keys = network.state_dict().Keys.ToHashSet();
        foreach (var key in new[]
        {
            "conv1.0.weight", "conv1.1.running_mean", "stage2.0.branch1.0.weight", "stage2.0.branch1.3.bias", "stage2.0.branch2.6.weight",
            "stage2.1.branch2.0.weight", "stage3.7.branch2.4.running_var", "stage4.3.branch2.5.weight", "conv5.0.weight", "conv5.1.num_batches_tracked", "fc.weight",
        })
        {
            Assert.Contains(key, keys);
        }
        Assert.DoesNotContain("stage2.1.branch1.0.weight", keys);

        using var input = torch.randn(2, 3, 224, 224);
        network.eval();
        using var output = network.call(input);
        Assert.Equal(new long[] { 2, 1000 }, output.shape);
    }
}
