using CeDsl.Architecture;

namespace CeDsl.PyTorch;

/// <summary>
/// The PyTorch constructor of each module operation: <c>torch.nn</c>'s modules with the same arguments as
/// TorchSharp's, CeDsl's layers as their <c>cedsl_torch</c> twins (python/cedsl_torch, same state-dict names).
/// </summary>
internal static class ModuleConstructors
{
    /// <summary>The expression that builds the module of <paramref name="node"/>.</summary>
    /// <exception cref="NotSupportedException">The operation has no PyTorch form here; the message names the node.</exception>
    public static PythonCall Of(ArchitectureNode node) => node.Operation switch
    {
        Conv2dOp c => Torch("Conv2d", Positional("in_channels", c.InChannels), Positional("out_channels", c.OutChannels), Positional("kernel_size", c.KernelSize),
            Keyword("stride", c.Stride, 1L), Keyword("padding", c.Padding, 0L), Keyword("dilation", c.Dilation, 1L), Keyword("groups", c.Groups, 1L), Keyword("bias", c.Bias, true)),
        BatchNorm2dOp b => Torch("BatchNorm2d", BatchNormArguments(b)),
        BatchNorm1dOp b => Torch("BatchNorm1d", BatchNormArguments(b)),
        GroupNormOp g => Torch("GroupNorm", Positional("num_groups", g.Groups), Positional("num_channels", g.Channels), Keyword("eps", g.Eps, 1e-5), Keyword("affine", g.Affine, true)),
        InstanceNorm2dOp i => Torch("InstanceNorm2d", Positional("num_features", i.Features), Keyword("eps", i.Eps, 1e-5), Keyword("momentum", i.Momentum, 0.1),
            Keyword("affine", i.Affine, false), Keyword("track_running_stats", i.TrackRunningStats, false)),
        // LayerNorm's bias argument is PyTorch 2.1's; it is written only where it is off.
        LayerNormOp l => Torch("LayerNorm", Positional("normalized_shape", l.NormalizedShape), Keyword("eps", l.Eps, 1e-5),
            Keyword("elementwise_affine", l.ElementwiseAffine, true), Keyword("bias", l.Bias || !l.ElementwiseAffine, true)),
        ReLUOp r => Torch("ReLU", Keyword("inplace", r.InPlace, false)),
        ReLU6Op r => Torch("ReLU6", Keyword("inplace", r.InPlace, false)),
        MaxPool2dOp p => Torch("MaxPool2d", Positional("kernel_size", p.KernelSize), Required("stride", p.Stride), Keyword("padding", p.Padding, 0L),
            Keyword("dilation", p.Dilation, 1L), Keyword("ceil_mode", p.CeilMode, false)),
        AvgPool2dOp p => Torch("AvgPool2d", Positional("kernel_size", p.KernelSize), Required("stride", p.Stride), Keyword("padding", p.Padding, 0L),
            Keyword("ceil_mode", p.CeilMode, false), Keyword("count_include_pad", p.CountIncludePad, true)),
        AdaptiveAvgPool2dOp p => Torch("AdaptiveAvgPool2d", new PythonArgument("output_size",
            new PythonTuple([new PythonLiteral(p.OutputHeight), new PythonLiteral(p.OutputWidth)]), Positional: true)),
        FlattenOp f => Torch("Flatten", Keyword("start_dim", f.StartDim, 1L), Keyword("end_dim", f.EndDim, -1L)),
        LinearOp l => Torch("Linear", Positional("in_features", l.InFeatures), Positional("out_features", l.OutFeatures), Keyword("bias", l.HasBias, true)),
        DropoutOp d => Torch("Dropout", Positional("p", d.P), Keyword("inplace", d.InPlace, false)),

        ChannelEquilibriumOp ce => Twin("ChannelEquilibrium", Positional("channels", ce.Channels), Required("group_size", (long)ce.GroupSize),
            Required("reduction", (long)ce.Reduction), Required("iterations", (long)ce.Iterations), Required("pool", ce.Pool), Required("eps", ce.Eps), Required("momentum", ce.Momentum)),
        BatchDecorrelationOp bd => Twin("BatchDecorrelation", Positional("channels", bd.Channels), Required("group_size", (long)bd.GroupSize),
            Required("iterations", (long)bd.Iterations), Required("pool", bd.Pool), Required("eps", bd.Eps), Required("momentum", bd.Momentum)),
        AdaptiveInstanceInverseOp aii => Twin("AdaptiveInstanceInverse", Positional("channels", aii.Channels), Required("reduction", (long)aii.Reduction),
            Required("momentum", aii.Momentum)),
        SqueezeExcitationOp se => Twin("SqueezeExcitation", Positional("channels", se.Channels), Required("reduction", (long)se.Reduction)),
        // In place or not, the evaluation output is the same; the twin never writes over its input.
        FoldedChannelEquilibriumOp ce => Twin("FoldedChannelEquilibrium", Positional("channels", ce.Channels), Required("group_size", (long)ce.GroupSize),
            Required("reduction", (long)ce.Reduction)),
        FoldedAdaptiveInstanceInverseOp aii => Twin("FoldedAdaptiveInstanceInverse", Positional("channels", aii.Channels), Required("reduction", (long)aii.Reduction)),
        SelectiveConv2dOp s => Twin("SelectiveConv2d", Positional("in_channels", s.InChannels), Positional("out_channels", s.OutChannels), Positional("kernel_size", s.KernelSize),
            Required("stride", s.Stride), Required("padding", s.Padding), Required("dropout", s.Dropout), Required("gamma", s.Gamma), Required("k", (long)s.K),
            Required("n_max", s.NMax is { } n ? (long)n : null), Required("align_corners", s.AlignCorners)),
        // Built with every channel kept; load_state_dict resizes it to the saved "kept".
        PrunedSelectiveConv2dOp p => Twin("PrunedSelectiveConv2d", Positional("in_channels", p.InChannels), Positional("out_channels", p.OutChannels),
            Positional("kernel_size", p.KernelSize), Required("stride", p.Stride), Required("padding", p.Padding), Required("dropout", p.Dropout)),
        _ => throw new NotSupportedException(
            $"node '{node.Name}' ({node.Module ?? "no module"}) computes {node.Operation.Kind}, which has no PyTorch form in cedsl's exporter (it writes torch.nn's convolutions, norms, activations, pooling, linear and dropout layers and cedsl_torch's layers)."),
    };

    private static PythonArgument[] BatchNormArguments(BatchNormOp b) =>
    [
        Positional("num_features", b.Features), Keyword("eps", b.Eps, 1e-5), Keyword("momentum", b.Momentum, 0.1),
        Keyword("affine", b.Affine, true), Keyword("track_running_stats", b.TrackRunningStats, true),
    ];

    private static PythonCall Torch(string module, params PythonArgument[] arguments) => new("nn." + module, arguments);

    private static PythonCall Twin(string layer, params PythonArgument[] arguments) => new("cedsl_torch." + layer, arguments);

    private static PythonArgument Positional(string name, object value) => new(name, new PythonLiteral(value), Positional: true);

    private static PythonArgument Required(string name, object? value) => new(name, new PythonLiteral(value));

    private static PythonArgument Keyword(string name, object value, object @default) => new(name, new PythonLiteral(value), HasDefault: true, Default: @default);
}
