using CeDsl.Folding;
using CeDsl.IO;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Generator.Tests.Folding;

/// <summary>
/// The generated Fold() of every kind of network (FoldingNetworks.cs): after a few training steps
/// that move every running statistic, the folded module's outputs equal the evaluation-mode
/// outputs of the original; no BatchNorm2d, CE, BD or AII module remains; the original is not
/// modified; refusals name the module; the folded module saves and loads.
/// </summary>
public class FoldingTests
{
    public static TheoryData<string> Networks => new(Factories.Keys);

    private static readonly Dictionary<string, Func<ScalarType, nn.Module<Tensor, Tensor>>> Factories = new()
    {
        [nameof(FoldResNet)] = dtype => new FoldResNet(dtype: dtype),
        [nameof(FoldCeResNet)] = dtype => new FoldCeResNet(dtype: dtype),
        [nameof(FoldCeBottleneckResNet)] = dtype => new FoldCeBottleneckResNet(dtype: dtype),
        [nameof(FoldSeResNet)] = dtype => new FoldSeResNet(dtype: dtype),
        [nameof(FoldBdResNet)] = dtype => new FoldBdResNet(dtype: dtype),
        [nameof(FoldAiiResNet)] = dtype => new FoldAiiResNet(dtype: dtype),
        [nameof(FoldMobileNetV2)] = dtype => new FoldMobileNetV2(dtype: dtype),
        [nameof(FoldBdMobileNet)] = dtype => new FoldBdMobileNet(dtype: dtype),
        [nameof(FoldShuffleNetV2)] = dtype => new FoldShuffleNetV2(dtype: dtype),
        [nameof(FoldVgg)] = dtype => new FoldVgg(dtype: dtype),
        [nameof(FoldKeptNorms)] = dtype => new FoldKeptNorms(dtype: dtype),
    };

    private static readonly long[] InputShape = { 4, 3, 32, 32 };

    /// <summary>
    /// Trains a few SGD steps on random data: every running statistic (BN mean, variance and count;
    /// BD/CE running_mean and running_wm; CE/AII running_scale) moves away from its initial value.
    /// </summary>
    private static void Train(nn.Module<Tensor, Tensor> network, ScalarType dtype, int steps = 3)
    {
        var initial = RunningStatistics(network).ToDictionary(b => b.Name, b => b.Value.clone());
        network.train();
        using var optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var input = randn(InputShape, dtype: dtype) * 2 + 0.5;
            var labels = randint(10, new long[] { InputShape[0] }, dtype: ScalarType.Int64);
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(network.call(input), labels);
            loss.backward();
            optimizer.step();
        }
        Assert.NotEmpty(initial);
        foreach (var (name, value) in RunningStatistics(network))
            Assert.False(Same(value, initial[name]), $"{name} still holds its initial value after training");
        network.eval();
    }

    private static IEnumerable<(string Name, Tensor Value)> RunningStatistics(nn.Module network) =>
        network.named_buffers().Where(b => b.name.Split('.')[^1].StartsWith("running_", StringComparison.Ordinal) || b.name.EndsWith("num_batches_tracked", StringComparison.Ordinal));

    private static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.clone());

    private static void AssertUnchanged(Dictionary<string, Tensor> before, nn.Module module)
    {
        var after = module.state_dict();
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (key, value) in before)
            Assert.True(Same(value, after[key]), $"{key} changed");
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static double RelativeError(Tensor actual, Tensor expected) =>
        (actual - expected).abs().max().to(ScalarType.Float64).item<double>() / expected.abs().max().to(ScalarType.Float64).item<double>();

    [Theory]
    [MemberData(nameof(Networks))]
    public void FoldedOutputsEqualEvaluationOutputsInFloat32(string network) => AssertFoldsExactly(network, ScalarType.Float32, 1e-4);

    [Theory]
    [MemberData(nameof(Networks))]
    public void FoldedOutputsEqualEvaluationOutputsInFloat64(string network) => AssertFoldsExactly(network, ScalarType.Float64, 1e-10);

    private static void AssertFoldsExactly(string name, ScalarType dtype, double tolerance)
    {
        manual_seed(5);
        using var network = Factories[name](dtype);
        Train(network, dtype);
        var before = Snapshot(network);

        using var folded = ((IFoldable)network).Fold();

        Assert.False(network.training);
        AssertUnchanged(before, network);
        Assert.False(folded.training);
        AssertNoNormalizationWork(folded, name);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = randn(8, 3, 32, 32, dtype: dtype) * 2 + 0.5;
        var expected = network.call(input);
        var actual = folded.call(input);
        Assert.Equal(dtype, actual.dtype);
        double error = RelativeError(actual, expected);
        if (error <= tolerance || dtype != ScalarType.Float32)
        {
            Assert.True(error <= tolerance, $"{name}: relative error {error:E2} > {tolerance:E0}");
            return;
        }

        // Seeds are global and tests run in parallel, so the weights differ from run to run; on rare
        // draws the float32 network is itself less accurate than 1e-4. Then the folded network must be
        // no further from the float64 result than the unfolded one.
        using var network64 = Factories[name](ScalarType.Float64);
        network64.load_state_dict(network.state_dict());
        network64.eval();
        var truth = network64.call(input.to(ScalarType.Float64));
        double unfoldedError = RelativeError(expected, truth), foldedError = RelativeError(actual, truth);
        Assert.True(foldedError <= 1.5 * unfoldedError,
            $"{name}: folded vs unfolded {error:E2}; from the float64 result: folded {foldedError:E2}, unfolded {unfoldedError:E2}");
    }

    /// <summary>BatchNorm2d layers that follow no convolution, kept on purpose.</summary>
    private static readonly Dictionary<string, string[]> KeptBatchNorms = new() { [nameof(FoldKeptNorms)] = new[] { "features.16" } };

    /// <summary>
    /// No module of the folded tree computes a covariance, a Newton iteration or a batch norm that
    /// follows a convolution: only convolutions, FoldedChannelEquilibrium / FoldedAdaptiveInstanceInverse,
    /// kept per-sample norms, SE and stateless layers remain.
    /// </summary>
    private static void AssertNoNormalizationWork(nn.Module folded, string name)
    {
        var kept = KeptBatchNorms.GetValueOrDefault(name, Array.Empty<string>());
        foreach (var (path, module) in folded.named_modules())
        {
            bool normalizes = module is ChannelEquilibrium or BatchDecorrelation or AdaptiveInstanceInverse
                || (module is BatchNorm2d && !kept.Contains(path));
            Assert.False(normalizes, $"{name}: {path} is a {module.GetType().Name} in the folded module");
        }
    }

    [Fact]
    public void FoldedResNetHasTheOriginalKeysMinusFoldedNormsPlusBiasesAndFoldedCe()
    {
        manual_seed(1);
        using var network = new FoldCeResNet();
        Train(network, ScalarType.Float32, steps: 1);
        using var folded = network.Fold();
        var keys = folded.state_dict().Keys.ToHashSet();
        var original = network.state_dict().Keys.ToHashSet();

        var expected = new HashSet<string>();
        foreach (var key in original)
        {
            var parts = key.Split('.');
            var module = string.Join('.', parts[..^1]);
            var leaf = parts[^1];
            if (module.EndsWith("bn1") || module.EndsWith("bn2") || module.EndsWith("downsample.1")) continue;
            if (module.EndsWith("ce1") || module.EndsWith(".ce") || module.Contains(".ce.") || module.Contains("ce1."))
            {
                var ce = key.StartsWith("ce1.", StringComparison.Ordinal) ? "ce1" : key[..(key.IndexOf(".ce.", StringComparison.Ordinal) + 3)];
                expected.Add(ce + ".weight");
                expected.Add(ce + ".AR.gate_scale");
                foreach (var gate in new[] { "AR.fc.0.weight", "AR.fc.1.weight", "AR.fc.1.bias", "AR.fc.3.weight" }) expected.Add(ce + "." + gate);
                continue;
            }
            expected.Add(key);
            if (leaf == "weight" && (module.EndsWith("conv1") || module.EndsWith("conv2") || module.EndsWith("downsample.0")))
                expected.Add(module + ".bias");
        }
        Assert.Equal(expected.Order(), keys.Order());
        Assert.Contains("layer2.0.downsample.0.bias", keys);
        Assert.Contains("layer1.1.ce.AR.gate_scale", keys);
        Assert.DoesNotContain("layer1.1.bn2.running_mean", keys);
    }

    [Fact]
    public void BdAfterADepthwiseNormFoldsIntoACoarserGroupedConvolutionAndBdAfterAKeptNormIsAOneByOneMap()
    {
        manual_seed(2);
        using var mobile = new FoldBdMobileNet();
        Train(mobile, ScalarType.Float32, steps: 1);
        using var foldedMobile = mobile.Fold();
        var modules = foldedMobile.named_modules().ToDictionary(m => m.name, m => m.module);
        // 32 channels in depthwise groups of one, BD groups of 8: 4 groups of 8 channels.
        Assert.Equal(4, ((Conv2d)modules["features.1.conv.1.0"]).groups);
        Assert.False(modules.ContainsKey("features.1.conv.1.bd"));

        manual_seed(3);
        using var kept = new FoldKeptNorms();
        Train(kept, ScalarType.Float32, steps: 1);
        using var foldedKept = kept.Fold();
        var keptModules = foldedKept.named_modules().ToDictionary(m => m.name, m => m.module);
        Assert.IsType<GroupNorm>(keptModules["features.1"]);
        Assert.IsType<InstanceNorm2d>(keptModules["features.4"]);
        Assert.IsType<FoldedChannelEquilibrium>(keptModules["features.ce1"]);
        var map = Assert.IsType<Conv2d>(keptModules["features.bd"]);
        Assert.Equal(2, map.groups);
        Assert.Null(map.bias);
        Assert.IsType<FoldedAdaptiveInstanceInverse>(keptModules["features.aii1"]);
        Assert.IsType<BatchNorm2d>(keptModules["features.16"]);
        Assert.IsType<BatchNorm1d>(keptModules["bn1"]);
        Assert.IsType<FoldedAdaptiveInstanceInverse>(keptModules["features.aii2"]);
        // Only a CE or AII that reads its chain's convolution (or kept norm) writes over its input.
        Assert.True(((FoldedChannelEquilibrium)keptModules["features.ce1"]).InPlace);
        Assert.True(((FoldedAdaptiveInstanceInverse)keptModules["features.aii1"]).InPlace);
        Assert.False(((FoldedAdaptiveInstanceInverse)keptModules["features.aii2"]).InPlace);
    }

    [Theory]
    [InlineData(Placement.None)]
    [InlineData(Placement.Explicit)]
    public void ABlockFoldsWithEveryPlacement(Placement placement)
    {
        // BD after the depthwise norm exists only with Explicit: the folded convolution's grouping follows it.
        manual_seed(10);
        using var block = new FoldBdInvertedResidual(16, 16, placement: placement);
        block.train();
        using (no_grad())
            block.call(randn(4, 16, 8, 8)).Dispose();
        block.eval();
        using var folded = block.Fold();
        var depthwise = (Conv2d)folded.named_modules().Single(m => m.name == "conv.1.0").module;
        Assert.Equal(placement == Placement.None ? 32 : 4, depthwise.groups);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = randn(4, 16, 8, 8);
        double error = RelativeError(folded.call(input), block.call(input));
        Assert.True(error <= 1e-4, $"relative error {error:E2}");
    }

    [Fact]
    public void TrainingModeIsRefusedNamingTheModuleAndTheOriginalStaysUnchanged()
    {
        manual_seed(4);
        using var network = new FoldCeResNet();
        Train(network, ScalarType.Float32, steps: 1);
        var before = Snapshot(network);

        network.train();
        var whole = Assert.Throws<InvalidOperationException>(() => network.Fold());
        Assert.Contains("FoldCeResNet", whole.Message);
        Assert.Contains("training mode", whole.Message);
        Assert.True(network.training);

        network.eval();
        var modules = network.named_modules().ToDictionary(m => m.name, m => m.module);
        modules["layer2.0.bn1"].train();
        var one = Assert.Throws<InvalidOperationException>(() => network.Fold());
        Assert.Contains("layer2.0.bn1 (BatchNorm2d)", one.Message);
        Assert.Contains("training mode", one.Message);
        Assert.True(modules["layer2.0.bn1"].training);
        Assert.False(modules["layer2.0.conv1"].training);
        AssertUnchanged(before, network);
    }

    [Fact]
    public void NeverEstimatedStatisticsAreRefusedNamingTheModule()
    {
        using var untrained = new FoldResNet();
        untrained.eval();
        var first = Assert.Throws<InvalidOperationException>(() => untrained.Fold());
        Assert.Contains("bn1 (BatchNorm2d)", first.Message);
        Assert.Contains("never estimated", first.Message);

        // Trained, except one block's CE, whose running_scale is reset to its initial 0.
        manual_seed(6);
        using var network = new FoldCeResNet();
        Train(network, ScalarType.Float32, steps: 1);
        using (no_grad())
            network.state_dict()["layer1.1.ce.AR.running_scale"].zero_();
        var before = Snapshot(network);
        var error = Assert.Throws<InvalidOperationException>(() => network.Fold());
        Assert.Contains("layer1.1.ce (ChannelEquilibrium)", error.Message);
        Assert.Contains("never estimated", error.Message);
        AssertUnchanged(before, network);

        // A block's BatchNorm back at its initial statistics.
        manual_seed(7);
        using var other = new FoldCeResNet();
        Train(other, ScalarType.Float32, steps: 1);
        var state = other.state_dict();
        using (no_grad())
        {
            state["layer2.0.downsample.1.running_mean"].zero_();
            state["layer2.0.downsample.1.running_var"].fill_(1);
            state["layer2.0.downsample.1.num_batches_tracked"].zero_();
        }
        var bn = Assert.Throws<InvalidOperationException>(() => other.Fold());
        Assert.Contains("layer2.0.downsample.1 (BatchNorm2d)", bn.Message);
    }

    [Theory]
    [InlineData(".safetensors")]
    [InlineData(".dat")]
    public void TheFoldedModuleSavesAndLoadsStrictlyIntoANewFoldedModule(string extension)
    {
        manual_seed(8);
        using var network = new FoldCeBottleneckResNet();
        Train(network, ScalarType.Float32);
        using var folded = network.Fold();
        var path = Path.Combine(Path.GetTempPath(), $"cedsl-folded-{Guid.NewGuid():N}{extension}");
        try
        {
            StateDict.Save(folded, path);
            using var loaded = new FoldCeBottleneckResNet.Folded();
            StateDict.Load(loaded, path, strict: true);
            loaded.eval();

            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var input = randn(InputShape);
            Assert.True(Same(folded.call(input), loaded.call(input)), "the loaded folded module gives other outputs");

            // The folded architecture is not the trained one: loading it into the unfolded network fails.
            using var unfolded = new FoldCeBottleneckResNet();
            Assert.ThrowsAny<Exception>(() => StateDict.Load(unfolded, path, strict: true));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AFoldedModuleBuiltWithOtherArgumentsIsRefused()
    {
        manual_seed(9);
        using var block = new FoldBottleneck(32, 8, stride: 2);
        block.train();
        using (no_grad())
            block.call(randn(4, 32, 8, 8)).Dispose();
        block.eval();
        using var right = block.Fold();
        using var wrong = new FoldBottleneck.Folded(32, 8, stride: 1);
        var error = Assert.Throws<InvalidOperationException>(() => wrong.FoldFrom(block));
        Assert.Contains("downsample.0", error.Message);
        Assert.Contains("only in the trained module", error.Message);
        Assert.Contains("same constructor arguments", error.Message);
    }
}
