using CeDsl.Folding;
using CeDsl.Layers;
using CeDsl.Selective;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Python.Tests.LayerTwins;

/// <summary>
/// One layer checked against its PyTorch twin: the TorchSharp module, the cedsl_torch class and constructor
/// arguments that must build the same module, the input shape and the element type.
/// </summary>
/// <param name="Name">Names the case's files and the test.</param>
/// <param name="PythonClass">The cedsl_torch class.</param>
/// <param name="PythonArguments">Its constructor's keyword arguments, as a JSON object.</param>
/// <param name="Create">Builds the TorchSharp module at an element type, with its state already set up.</param>
/// <param name="InputShape">(N, C, H, W).</param>
/// <param name="Type">Float64 or Float32.</param>
/// <param name="Trains">Runs the training steps (false: an inference-only module, evaluation only).</param>
/// <param name="DeallocGamma">When set, both sides also run dealloc with this gamma after the training steps.</param>
public sealed record TwinCase(string Name, string PythonClass, string PythonArguments, Func<ScalarType, nn.Module<Tensor, Tensor>> Create,
    long[] InputShape, ScalarType Type, bool Trains = true, double? DeallocGamma = null)
{
    public override string ToString() => Name;

    /// <summary>Every case: CE, BD, AII, SE, the selective layers and the folded CE/AII, in float64 and float32.</summary>
    public static IReadOnlyList<TwinCase> All { get; } = Build();

    private static List<TwinCase> Build()
    {
        var cases = new List<TwinCase>();
        void Both(string name, string pythonClass, string arguments, Func<ScalarType, nn.Module<Tensor, Tensor>> create, long[] shape,
            bool trains = true, double? dealloc = null)
        {
            cases.Add(new TwinCase(name + "_f64", pythonClass, arguments, create, shape, ScalarType.Float64, trains, dealloc));
            cases.Add(new TwinCase(name + "_f32", pythonClass, arguments, create, shape, ScalarType.Float32, trains, dealloc));
        }

        Both("ce_c32_d16", "ChannelEquilibrium", """{"channels": 32, "group_size": 16}""",
            t => new ChannelEquilibrium(32, 16, dtype: t), [4, 32, 6, 6]);
        Both("ce_c24_d16_halved_to_8", "ChannelEquilibrium", """{"channels": 24, "group_size": 16}""",
            t => new ChannelEquilibrium(24, 16, dtype: t), [4, 24, 5, 5]);
        Both("ce_c116_d16_halved_to_4", "ChannelEquilibrium", """{"channels": 116, "group_size": 16}""",
            t => new ChannelEquilibrium(116, 16, dtype: t), [3, 116, 4, 4]);
        Both("ce_stem_c64_d64", "ChannelEquilibrium", """{"channels": 64, "group_size": 64}""",
            t => new ChannelEquilibrium(64, 64, dtype: t), [2, 64, 8, 8]);
        Both("ce_c16_d8_pool_r2", "ChannelEquilibrium", """{"channels": 16, "group_size": 8, "reduction": 2, "pool": true}""",
            t => new ChannelEquilibrium(16, 8, reduction: 2, pool: true, dtype: t), [2, 16, 7, 8]);
        Both("bd_c24_d16_halved_to_8", "BatchDecorrelation", """{"channels": 24, "group_size": 16}""",
            t => new BatchDecorrelation(24, 16, dtype: t), [4, 24, 4, 4]);
        Both("aii_c116", "AdaptiveInstanceInverse", """{"channels": 116}""",
            t => new AdaptiveInstanceInverse(116, dtype: t), [3, 116, 3, 3]);
        Both("se_c32_r8", "SqueezeExcitation", """{"channels": 32, "reduction": 8}""",
            t => new SqueezeExcitation(32, 8, dtype: t), [4, 32, 5, 5]);
        Both("selective_k3_with_shifted_copies", "SelectiveConv2d", """{"in_channels": 16, "out_channels": 16, "kernel_size": 3, "k": 3}""",
            t => SelectiveWithCopies(t), [4, 16, 6, 7], dealloc: 0.2);
        Both("selective_k0_1x1_stride2", "SelectiveConv2d", """{"in_channels": 24, "out_channels": 32, "kernel_size": 1, "stride": 2, "k": 0}""",
            t => SelectivePruningOnly(t), [4, 24, 6, 6], dealloc: 0.1);
        Both("pruned_selective", "PrunedSelectiveConv2d", """{"in_channels": 24, "out_channels": 32, "kernel_size": 1, "stride": 2}""",
            t => Pruned(t), [4, 24, 6, 6]);
        Both("folded_ce_c24", "FoldedChannelEquilibrium", """{"channels": 24, "group_size": 16}""",
            t => InferenceFolding.ChannelEquilibrium(Trained(new ChannelEquilibrium(24, 16, dtype: t), [4, 24, 5, 5])), [4, 24, 5, 5], trains: false);
        Both("folded_aii_c116", "FoldedAdaptiveInstanceInverse", """{"channels": 116}""",
            t => InferenceFolding.AdaptiveInstanceInverse(Trained(new AdaptiveInstanceInverse(116, dtype: t), [3, 116, 3, 3])), [3, 116, 3, 3], trains: false);
        return cases;
    }

    /// <summary>Some channels released and re-allocated as shifted copies, every conv weight non-zero again (so the shifts matter).</summary>
    private static SelectiveConv2d SelectiveWithCopies(ScalarType type)
    {
        var layer = new SelectiveConv2d(16, 16, 3, k: 3, dtype: type);
        TwinState.Randomize(layer);
        layer.Gamma = 0.25;
        Assert.NotEmpty(layer.Dealloc().NewlyClosed);
        Assert.NotEmpty(layer.Realloc(new Random(7)).Copies);
        TwinState.Randomize(layer, parametersOnly: true, skip: name => name == "_bias");
        return layer;
    }

    private static SelectiveConv2d SelectivePruningOnly(ScalarType type)
    {
        var layer = new SelectiveConv2d(24, 32, 1, stride: 2, k: 0, dtype: type);
        TwinState.Randomize(layer);
        layer.Gamma = 0.2;
        Assert.NotEmpty(layer.Dealloc().NewlyClosed);
        return layer;
    }

    private static PrunedSelectiveConv2d Pruned(ScalarType type)
    {
        using var source = SelectivePruningOnly(type);
        var pruned = new PrunedSelectiveConv2d(24, 32, 1, stride: 2, dtype: type);
        pruned.PruneFrom(source);
        Assert.True(pruned.KeptChannels < 24);
        return pruned;
    }

    /// <summary>Random parameters, then two training steps so that the running statistics are the trained kind; evaluation mode.</summary>
    private static T Trained<T>(T module, long[] shape) where T : nn.Module<Tensor, Tensor>
    {
        TwinState.Randomize(module);
        module.train();
        using (no_grad())
        using (NewDisposeScope())
        {
            var type = module.parameters().First().dtype;
            module.call(TwinState.NormalizedLikeInput(shape, type, seed: 99));
            module.call(TwinState.NormalizedLikeInput(shape, type, seed: 98));
        }
        module.eval();
        return module;
    }
}
