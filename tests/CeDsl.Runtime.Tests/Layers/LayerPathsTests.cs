using CeDsl.Layers;
using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>A layer's run-time errors name where it sits in the network, once the network has recorded the paths.</summary>
public class LayerPathsTests
{
    [Fact]
    public void A_layers_error_names_its_path_in_the_network_that_recorded_it()
    {
        using var network = nn.Sequential(("body", nn.Sequential(("0", nn.Conv2d(16, 16, 3, stride: 2)), ("ce", new ChannelEquilibrium(16)))));
        LayerPaths.Record(network);

        var error = Assert.Throws<ArgumentException>(() => network.call(randn(2, 16, 3, 3)));

        Assert.StartsWith("body.ce (ChannelEquilibrium): H*W = 1", error.Message);
    }

    [Fact]
    public void Without_a_recorded_path_the_error_names_the_layer_type()
    {
        using var layer = new ChannelEquilibrium(16);

        var error = Assert.Throws<ArgumentException>(() => layer.call(randn(2, 16, 1, 1)));

        Assert.StartsWith("ChannelEquilibrium: H*W = 1", error.Message);
        Assert.Null(LayerPaths.Of(layer));
    }

    [Fact]
    public void The_outer_network_records_last_so_its_paths_are_kept()
    {
        using var block = nn.Sequential(("se", new SqueezeExcitation(8, reduction: 2)));
        LayerPaths.Record(block);
        using var network = nn.Sequential(("layer1", nn.Sequential(("0", block))));
        LayerPaths.Record(network);

        Assert.Equal("layer1.0.se", LayerPaths.Of(block.children().First()));
        var error = Assert.Throws<ArgumentException>(() => network.call(randn(2, 4, 5, 5)));
        Assert.StartsWith("layer1.0.se (SqueezeExcitation): channel count mismatch", error.Message);
    }

    [Theory]
    [InlineData("bd")]
    [InlineData("aii")]
    [InlineData("sconv")]
    public void Every_layer_of_the_library_names_its_path(string kind)
    {
        nn.Module<Tensor, Tensor> layer = kind switch
        {
            "bd" => new BatchDecorrelation(16),
            "aii" => new AdaptiveInstanceInverse(16),
            _ => new SelectiveConv2d(16, 16, 3),
        };
        using var network = nn.Sequential(("stage", nn.Sequential(("unit", layer))));
        LayerPaths.Record(network);

        var error = Assert.Throws<ArgumentException>(() => network.call(randn(2, 8, 4, 4)));

        Assert.StartsWith("stage.unit (", error.Message);
    }
}
