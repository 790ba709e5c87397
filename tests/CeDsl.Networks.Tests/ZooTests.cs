using System.Text.RegularExpressions;
using CeDsl.Analysis;
using CeDsl.Layers;
using CeDsl.Networks;
using CeDsl.Platform;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>The zoo's networks: published parameter counts, CE placement, output shapes, factory.</summary>
public class ZooTests
{
    private static long Parameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    [Theory]
    [InlineData("resnet18", 11_689_512)]
    [InlineData("resnet50", 25_557_032)]
    [InlineData("resnet101", 44_549_160)]
    [InlineData("mobilenetv2", 3_504_872)]
    [InlineData("shufflenetv2-1.0x", 2_278_604)]
    [InlineData("shufflenetv2-0.5x", 1_366_792)]
    [InlineData("ce-resnet50", 29_331_926)]
    [InlineData("vgg16-bn", 14_728_266)]
    [InlineData("resnet20", 272_474)]
    [InlineData("resnet18-cifar", 11_173_962)]
    public void ParameterCountsArePublishedOnes(string name, long expected)
    {
        using var network = Zoo.Create(name);
        Assert.Equal(expected, Parameters(network));
    }

    public static TheoryData<string, string[]> CePlacements => new()
    {
        { "ce-resnet18", ["ce1", .. Blocks("layer1", 2), .. Blocks("layer2", 2), .. Blocks("layer3", 2)] },
        { "ce-resnet50", ["ce1", .. Blocks("layer1", 3), .. Blocks("layer2", 4), .. Blocks("layer3", 6)] },
        { "ce-resnet101", ["ce1", .. Blocks("layer1", 3), .. Blocks("layer2", 4)] },
        { "ce-gn-resnet50", ["ce1", .. Blocks("layer1", 3), .. Blocks("layer2", 4), .. Blocks("layer3", 6)] },
        { "ce-in-resnet50", ["ce1", .. Blocks("layer1", 3), .. Blocks("layer2", 4), .. Blocks("layer3", 6)] },
        { "ce-ln-resnet50", ["ce1", .. Blocks("layer1", 3), .. Blocks("layer2", 4), .. Blocks("layer3", 6)] },
        { "ce-mobilenetv2", ["features.1.conv.0.ce", .. Enumerable.Range(2, 16).Select(i => $"features.{i}.conv.1.ce")] },
        { "ce-shufflenetv2-1.0x", [.. Shuffle("stage2", 4), .. Shuffle("stage3", 8), .. Shuffle("stage4", 4)] },
        { "ce-shufflenetv2-0.5x", [.. Shuffle("stage2", 4), .. Shuffle("stage3", 8), .. Shuffle("stage4", 4)] },
        { "ce-vgg16-bn", [.. Enumerable.Range(1, 13).Select(i => $"features.ce{i}")] },
        { "ce-resnet20", ["ce1", .. Blocks("layer1", 3), .. Blocks("layer2", 3), .. Blocks("layer3", 3)] },
        { "ce-resnet18-cifar", ["ce1", .. Blocks("layer1", 2), .. Blocks("layer2", 2), .. Blocks("layer3", 2), .. Blocks("layer4", 2)] },
    };

    private static IEnumerable<string> Blocks(string stage, int count, string layer = "ce") =>
        Enumerable.Range(0, count).Select(i => $"{stage}.{i}.{layer}");

    private static IEnumerable<string> Shuffle(string stage, int count) =>
        new[] { $"{stage}.0.branch1.ce", $"{stage}.0.branch2.ce" }.Concat(Enumerable.Range(1, count - 1).Select(i => $"{stage}.{i}.branch2.ce"));

    [Theory]
    [MemberData(nameof(CePlacements))]
    public void CeSitsWhereThePapersRulePutsIt(string name, string[] expected)
    {
        using var network = Zoo.Create(name);
        var found = network.named_modules().Where(m => m.module is ChannelEquilibrium).Select(m => m.name).ToArray();
        Assert.Equal(expected.Order(), found.Order());
    }

    [Fact]
    public void CePrecedesTheActivationThatFollowsANorm()
    {
        // In CE-MobileNetV2, each CE follows the depthwise norm (key 1) and precedes ReLU6 (key 2).
        using var network = Zoo.Create("ce-mobilenetv2");
        var keys = network.named_modules().Select(m => m.name).Where(n => Regex.IsMatch(n, @"^features\.5\.conv\.1\.[^.]+$")).ToList();
        Assert.Equal(["features.5.conv.1.0", "features.5.conv.1.1", "features.5.conv.1.ce", "features.5.conv.1.2"], keys);
    }

    [Theory]
    [InlineData("bd-resnet50", typeof(BatchDecorrelation), 14)]
    [InlineData("aii-resnet50", typeof(AdaptiveInstanceInverse), 14)]
    [InlineData("bd-resnet20", typeof(BatchDecorrelation), 10)]
    [InlineData("aii-resnet20", typeof(AdaptiveInstanceInverse), 10)]
    [InlineData("se-resnet50", typeof(SqueezeExcitation), 16)]
    [InlineData("se-mobilenetv2", typeof(SqueezeExcitation), 17)]
    [InlineData("se-shufflenetv2-1.0x", typeof(SqueezeExcitation), 16)]
    [InlineData("se-vgg16-bn", typeof(SqueezeExcitation), 13)]
    public void VariantsHaveTheirBlockAndNoCe(string name, Type block, int count)
    {
        using var network = Zoo.Create(name);
        var modules = network.named_modules().Select(m => m.module).ToList();
        Assert.Equal(count, modules.Count(m => m.GetType() == block));
        if (block != typeof(AdaptiveInstanceInverse)) Assert.DoesNotContain(modules, m => m is AdaptiveInstanceInverse);
        Assert.DoesNotContain(modules, m => m is ChannelEquilibrium);
    }

    [Theory]
    [InlineData("resnet50")]
    [InlineData("mobilenetv2")]
    [InlineData("shufflenetv2-1.0x")]
    [InlineData("vgg16-bn")]
    [InlineData("resnet20")]
    public void BaselinesHaveNoCeSeBdOrAii(string name)
    {
        using var network = Zoo.Create(name);
        Assert.DoesNotContain(network.modules(), m => m is ChannelEquilibrium or BatchDecorrelation or AdaptiveInstanceInverse or SqueezeExcitation);
    }

    public static TheoryData<string> AllNames => [.. Zoo.Names];

    [Theory]
    [MemberData(nameof(AllNames))]
    public void EveryNetworkGivesClassScores(string name)
    {
        // ImageNet networks at 64x64 (their layers work at any size their strides allow) to keep
        // the test fast; 32x32 networks at their declared size, with Fashion-MNIST's one channel.
        var entry = Zoo.Find(name);
        bool small = entry.InputShape[1] == 32;
        using var network = entry.Create(classes: 7, inChannels: small ? 1 : 3);
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        var input = torch.randn(2, small ? 1 : 3, small ? 32 : 64, small ? 32 : 64);
        network.train();
        var output = network.call(input);
        Assert.Equal(new long[] { 2, 7 }, output.shape);
        Assert.True(output.isfinite().all().item<bool>());
    }

    [Fact]
    public void ALayerErrorInsideANetworkNamesTheLayer()
    {
        // At 16x16 the feature map is 1x1 from layer3 on: CE's per-instance variance is undefined there.
        using var network = Zoo.Create("ce-resnet50");
        network.train();

        var error = Assert.Throws<ArgumentException>(() => network.call(torch.randn(2, 3, 16, 16)));

        Assert.StartsWith("layer3.0.ce (ChannelEquilibrium): H*W = 1", error.Message);
    }

    [Fact]
    public void EveryNetworkIsProtectedFromTheOneDnnDefectsWhereItIsMade()
    {
        foreach (var entry in new[] { "resnet50", "ce-resnet50", "shufflenetv2-0.5x", "sconv-preresnet29" }.Select(Zoo.Find))
        {
            using var network = entry.Create();
            Assert.True(network.modules().Prepend(network).All(OneDnnGuard.IsProtected), entry.Name);
            using var folded = entry.CreateFolded();
            Assert.True(folded.modules().Prepend(folded).All(OneDnnGuard.IsProtected), entry.Name + " folded");
        }
    }

    [Fact]
    public void FactoryNamesAreUniqueAndLowerCase()
    {
        var names = Zoo.Names.ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(names, n => Assert.Matches("^[a-z0-9.-]+$", n));
        Assert.Equal(40, names.Count);
    }

    [Fact]
    public void FactoryIsCaseInsensitiveAndTyped()
    {
        using var network = Zoo.Create("CE-ResNet50");
        Assert.IsType<CeResNet50>(network);
        Assert.Equal(typeof(CeResNet50), Zoo.Find("ce-resnet50").Type);
    }

    [Fact]
    public void AnUnknownNameListsTheClosestOnes()
    {
        var error = Assert.Throws<ArgumentException>(() => Zoo.Create("ce-resnt50"));
        Assert.Contains("No network is called 'ce-resnt50'", error.Message);
        Assert.Contains("Did you mean ce-resnet50", error.Message);
    }

    [Fact]
    public void NonPositiveClassesAreRejected()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Zoo.Create("resnet20", classes: 0));
        Assert.Contains("resnet20", error.Message);
    }

    [Fact]
    public void SelectiveResNetHasTheReleasedUnitsAndTheBaselinesOtherKeys()
    {
        using var plain = Zoo.Create("preresnet29", inChannels: 1);
        using var selective = Zoo.Create("sconv-preresnet29", inChannels: 1);
        var layers = selective.named_modules().Where(m => m.module is CeDsl.Selective.SelectiveConv2d).Select(m => m.name).ToList();
        Assert.Equal(27, layers.Count);
        Assert.Contains("block2.0.brc_2", layers);
        var keys = selective.state_dict().Keys.ToHashSet();
        Assert.Contains("block1.0.brc_1.is_open", keys);
        Assert.Contains("block1.0.brc_1._ind_ptr", keys); // K = 3
        Assert.DoesNotContain("block1.0.brc_2._ind_ptr", keys); // K = 0 prunes only
        var plainKeys = plain.state_dict().Keys.Where(k => !k.EndsWith("relu", StringComparison.Ordinal)).ToHashSet();
        Assert.Subset(keys, plainKeys);
        // The selective units hold the same BN and conv parameters as BN-ReLU-conv.
        Assert.Equal(Parameters(plain), selective.named_parameters().Where(p => !p.name.EndsWith("_bias", StringComparison.Ordinal)).Sum(p => p.parameter.numel()));
    }

    [Fact]
    public void EveryEntryCreatesItsEmptyFoldedFormWithTheSameKeysAsAFold()
    {
        foreach (var entry in Zoo.Entries.Where(e => e.Name is "ce-resnet20" or "bd-resnet20" or "resnet20"))
        {
            using var folded = entry.CreateFolded(classes: 10, inChannels: 1);
            Assert.Equal(entry.Type.GetNestedType("Folded"), folded.GetType());
            using var trained = entry.Create(classes: 10, inChannels: 1);
            trained.train();
            using (no_grad()) trained.call(torch.randn(4, 1, 32, 32)).Dispose();
            trained.eval();
            using var fold = ((CeDsl.Folding.IFoldable)trained).Fold();
            Assert.Equal(fold.state_dict().Keys.Order(), folded.state_dict().Keys.Order());
        }
    }
}
