using System;
using System.Collections.Generic;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Emit;

/// <summary>
/// How each <see cref="LayerPlan"/> is written: its module type, its factory and its architecture operation
/// (every value the plan holds, for <c>CeDsl.Architecture</c>). CeDsl's own layers get every value by name;
/// TorchSharp's modules get the values that differ from PyTorch's API defaults (<see cref="Torch"/>), as
/// hand-written TorchSharp does.
/// </summary>
internal static class Modules
{
    /// <summary>
    /// PyTorch's defaults of the arguments CeDsl sets (TorchSharp's factories take PyTorch's): fixed by the
    /// framework's API, not by CeDsl, and the only defaults the emitter relies on.
    /// </summary>
    private static class Torch
    {
        public const int Stride = 1;
        public const int Padding = 0;
        public const int Groups = 1;
        public const bool Bias = true;
        public const double Eps = 1e-5;
        public const double Momentum = 0.1;
    }

    /// <summary>", name: value", or nothing where the value is PyTorch's default.</summary>
    private static string Unless(bool isDefault, string name, Dim value) => isDefault ? "" : $", {name}: {D(value)}";

    private static string Unless(bool isDefault, string name, int value) => isDefault ? "" : $", {name}: {N(value)}";

    private static string Unless(bool isDefault, string name, double value) => isDefault ? "" : $", {name}: {F(value)}";

    private static string Unless(bool isDefault, string name, bool value) => isDefault ? "" : $", {name}: {B(value)}";

    public const string DeviceArguments = "device: device, dtype: dtype";

    private static string D(Dim dim) => Expressions.Of(dim);

    private static string B(bool value) => Expressions.Of(value);

    private static string F(double value) => Literals.Double(value);

    private static string N(int value) => Literals.Long(value);

    private static string NMax(int value) => value == 0 ? "null" : N(value);

    /// <summary>A type from inside <paramref name="owner"/>: its name in the same namespace, global:: qualified otherwise.</summary>
    public static string TypeReference(TypeRef type, TypeRef owner) =>
        type.Namespace == owner.Namespace ? type.NestedName : "global::" + type.FullName;

    /// <summary>The block's class, or its Folded class.</summary>
    public static string BlockType(BlockPlan block, TypeRef owner) =>
        TypeReference(block.Type, owner) + (block.Folded ? ".Folded" : "");

    public static string TypeName(LayerPlan layer, TypeRef owner) => layer switch
    {
        ConvPlan => "Conv2d",
        SelectiveConvPlan => "SelectiveConv2d",
        NormPlan norm => norm.Module.ToString(),
        ChannelEquilibriumPlan => "ChannelEquilibrium",
        BatchDecorrelationPlan => "BatchDecorrelation",
        AdaptiveInstanceInversePlan => "AdaptiveInstanceInverse",
        SqueezeExcitationPlan => "SqueezeExcitation",
        ActivationPlan activation => activation.Activation.ToString(),
        PoolPlan pool => pool.Max ? "MaxPool2d" : "AvgPool2d",
        GlobalPoolPlan => "AdaptiveAvgPool2d",
        FlattenPlan => "Flatten",
        LinearPlan => "Linear",
        DropoutPlan => "Dropout",
        BlockPlan block => BlockType(block, owner),
        FoldedChannelEquilibriumPlan => "FoldedChannelEquilibrium",
        FoldedAdaptiveInstanceInversePlan => "FoldedAdaptiveInstanceInverse",
        PrunedSelectiveConvPlan => "PrunedSelectiveConv2d",
        _ => throw new InvalidOperationException("no module type for " + layer.GetType().Name),
    };

    /// <summary>The expression that builds the module.</summary>
    public static string Factory(LayerPlan layer, TypeRef owner) => layer switch
    {
        ConvPlan c => $"nn.Conv2d({D(c.In)}, {D(c.Out)}, {N(c.Kernel)}{Unless(c.Stride == Dim.Of(Torch.Stride), "stride", c.Stride)}{Unless(c.Padding == Torch.Padding, "padding", c.Padding)}{Unless(c.Groups == Dim.Of(Torch.Groups), "groups", c.Groups)}{Unless(c.Bias == Torch.Bias, "bias", c.Bias)}, {DeviceArguments})",
        SelectiveConvPlan s => $"new SelectiveConv2d({D(s.In)}, {D(s.Out)}, {N(s.Kernel)}, stride: {D(s.Stride)}, padding: {N(s.Padding)}, dropout: {F(s.Dropout)}, gamma: {F(s.Gamma)}, k: {N(s.K)}, nMax: {NMax(s.NMax)}, {DeviceArguments})",
        NormPlan n => n.Module switch
        {
            // Momentum is BatchNorm's: InstanceNorm2d (without running statistics), GroupNorm and LayerNorm have none.
            NormModule.BatchNorm2d or NormModule.BatchNorm1d => $"nn.{n.Module}({D(n.Channels)}{Unless(n.Eps == Torch.Eps, "eps", n.Eps)}{Unless(n.Momentum == Torch.Momentum, "momentum", n.Momentum)}, {DeviceArguments})",
            NormModule.InstanceNorm2d => $"nn.InstanceNorm2d({D(n.Channels)}{Unless(n.Eps == Torch.Eps, "eps", n.Eps)}, affine: true, {DeviceArguments})",
            NormModule.LayerNorm => $"nn.LayerNorm({D(n.Channels)}{Unless(n.Eps == Torch.Eps, "eps", n.Eps)}, {DeviceArguments})",
            _ => $"nn.GroupNorm({D(n.Groups)}, {D(n.Channels)}{Unless(n.Eps == Torch.Eps, "eps", n.Eps)}, {DeviceArguments})",
        },
        ChannelEquilibriumPlan ce => $"new ChannelEquilibrium({D(ce.Channels)}, groupSize: {D(ce.GroupSize)}, reduction: {D(ce.Reduction)}, iterations: {N(ce.Iterations)}, {DeviceArguments})",
        BatchDecorrelationPlan bd => $"new BatchDecorrelation({D(bd.Channels)}, groupSize: {D(bd.GroupSize)}, iterations: {N(bd.Iterations)}, {DeviceArguments})",
        AdaptiveInstanceInversePlan aii => $"new AdaptiveInstanceInverse({D(aii.Channels)}, reduction: {D(aii.Reduction)}, {DeviceArguments})",
        SqueezeExcitationPlan se => $"new SqueezeExcitation({D(se.Channels)}, reduction: {D(se.Reduction)}, {DeviceArguments})",
        ActivationPlan a => $"nn.{a.Activation}()",
        PoolPlan p => $"nn.{TypeName(p, owner)}({N(p.Kernel)}{Unless(p.Stride == p.Kernel, "stride", p.Stride)}{Unless(p.Padding == Torch.Padding, "padding", p.Padding)})",
        GlobalPoolPlan g => $"nn.AdaptiveAvgPool2d(new long[] {{ {N(g.Size)}, {N(g.Size)} }})",
        FlattenPlan => "nn.Flatten()",
        LinearPlan l => $"nn.Linear({D(l.In)}, {D(l.Out)}{Unless(l.Bias == Torch.Bias, "hasBias", l.Bias)}, {DeviceArguments})",
        DropoutPlan d => $"nn.Dropout({F(d.P)})",
        BlockPlan b => $"new {BlockType(b, owner)}({BlockArguments(b.Arguments, named: true)}, {DeviceArguments})",
        FoldedChannelEquilibriumPlan ce => $"new FoldedChannelEquilibrium({D(ce.Channels)}, groupSize: {D(ce.GroupSize)}, reduction: {D(ce.Reduction)}, inplace: {B(ce.InPlace)}, {DeviceArguments})",
        FoldedAdaptiveInstanceInversePlan aii => $"new FoldedAdaptiveInstanceInverse({D(aii.Channels)}, reduction: {D(aii.Reduction)}, inplace: {B(aii.InPlace)}, {DeviceArguments})",
        PrunedSelectiveConvPlan p => $"new PrunedSelectiveConv2d({D(p.In)}, {D(p.Out)}, {N(p.Kernel)}, stride: {D(p.Stride)}, padding: {N(p.Padding)}, dropout: {F(p.Dropout)}, {DeviceArguments})",
        _ => throw new InvalidOperationException("no factory for " + layer.GetType().Name),
    };

    /// <summary>
    /// The architecture operation of the module (not for blocks, which describe themselves): the module's values, passed the way its factory
    /// passes them (the operations of TorchSharp's modules take PyTorch's defaults as theirs).
    /// </summary>
    public static string Operation(LayerPlan layer) => layer switch
    {
        ConvPlan c => $"new Conv2dOp({D(c.In)}, {D(c.Out)}, {N(c.Kernel)}{Unless(c.Stride == Dim.Of(Torch.Stride), "Stride", c.Stride)}{Unless(c.Padding == Torch.Padding, "Padding", c.Padding)}{Unless(c.Groups == Dim.Of(Torch.Groups), "Groups", c.Groups)}{Unless(c.Bias == Torch.Bias, "Bias", c.Bias)})",
        SelectiveConvPlan s => $"new SelectiveConv2dOp({D(s.In)}, {D(s.Out)}, {N(s.Kernel)}, Stride: {D(s.Stride)}, Padding: {N(s.Padding)}, Dropout: {F(s.Dropout)}, Gamma: {F(s.Gamma)}, K: {N(s.K)}, NMax: {NMax(s.NMax)})",
        NormPlan n => n.Module switch
        {
            NormModule.BatchNorm2d or NormModule.BatchNorm1d => $"new {n.Module}Op({D(n.Channels)}{Unless(n.Eps == Torch.Eps, "Eps", n.Eps)}{Unless(n.Momentum == Torch.Momentum, "Momentum", n.Momentum)})",
            NormModule.InstanceNorm2d => $"new InstanceNorm2dOp({D(n.Channels)}{Unless(n.Eps == Torch.Eps, "Eps", n.Eps)}, Affine: true)",
            NormModule.LayerNorm => $"new LayerNormOp({D(n.Channels)}{Unless(n.Eps == Torch.Eps, "Eps", n.Eps)})",
            _ => $"new GroupNormOp({D(n.Groups)}, {D(n.Channels)}{Unless(n.Eps == Torch.Eps, "Eps", n.Eps)})",
        },
        ChannelEquilibriumPlan ce => $"new ChannelEquilibriumOp({D(ce.Channels)}, GroupSize: {D(ce.GroupSize)}, Reduction: {D(ce.Reduction)}, Iterations: {N(ce.Iterations)})",
        BatchDecorrelationPlan bd => $"new BatchDecorrelationOp({D(bd.Channels)}, GroupSize: {D(bd.GroupSize)}, Iterations: {N(bd.Iterations)})",
        AdaptiveInstanceInversePlan aii => $"new AdaptiveInstanceInverseOp({D(aii.Channels)}, Reduction: {D(aii.Reduction)})",
        SqueezeExcitationPlan se => $"new SqueezeExcitationOp({D(se.Channels)}, Reduction: {D(se.Reduction)})",
        ActivationPlan a => $"new {a.Activation}Op()",
        PoolPlan p => $"new {(p.Max ? "MaxPool2d" : "AvgPool2d")}Op({N(p.Kernel)}, {N(p.Stride)}{Unless(p.Padding == Torch.Padding, "Padding", p.Padding)})",
        GlobalPoolPlan g => $"new AdaptiveAvgPool2dOp({N(g.Size)}, {N(g.Size)})",
        FlattenPlan => "new FlattenOp()",
        LinearPlan l => $"new LinearOp({D(l.In)}, {D(l.Out)}{Unless(l.Bias == Torch.Bias, "HasBias", l.Bias)})",
        DropoutPlan d => $"new DropoutOp({F(d.P)})",
        FoldedChannelEquilibriumPlan ce => $"new FoldedChannelEquilibriumOp({D(ce.Channels)}, GroupSize: {D(ce.GroupSize)}, Reduction: {D(ce.Reduction)}, InPlace: {B(ce.InPlace)})",
        FoldedAdaptiveInstanceInversePlan aii => $"new FoldedAdaptiveInstanceInverseOp({D(aii.Channels)}, Reduction: {D(aii.Reduction)}, InPlace: {B(aii.InPlace)})",
        PrunedSelectiveConvPlan p => $"new PrunedSelectiveConv2dOp({D(p.In)}, {D(p.Out)}, {N(p.Kernel)}, Stride: {D(p.Stride)}, Padding: {N(p.Padding)}, Dropout: {F(p.Dropout)})",
        _ => throw new InvalidOperationException("no operation for " + layer.GetType().Name),
    };

    /// <summary>The block's constructor arguments, named (<paramref name="named"/>) or positional, without device and dtype; <paramref name="withInChannels"/> false leaves inChannels out (the architecture reads it from the input).</summary>
    public static string BlockArguments(BlockArguments arguments, bool named, bool withInChannels = true)
    {
        var list = new List<string>();
        void Add(string name, string value) => list.Add(named ? name + ": " + value : value);
        if (withInChannels) Add("inChannels", D(arguments.InChannels));
        Add("width", D(arguments.Width));
        if (arguments.Stride is { } stride) Add("stride", D(stride));
        if (arguments.Placement is { } placement) Add("placement", Expressions.Of(placement));
        if (arguments.CEGroupSize is { } groupSize) Add("ceGroupSize", D(groupSize));
        if (arguments.CEReduction is { } reduction) Add("ceReduction", D(reduction));
        return string.Join(", ", list);
    }

    /// <summary>The initialization statements for the module in <paramref name="variable"/>.</summary>
    public static IEnumerable<string> Initialization(MemberPlan member, string variable)
    {
        switch (member.Init)
        {
            case Model.Initialization.Normal:
                var linear = (LinearPlan)member.Leaf!;
                yield return $"nn.init.normal_({variable}.weight, std: {F(linear.InitStd)});";
                if (linear.Bias) yield return $"nn.init.zeros_({variable}.bias);";
                break;
            case Model.Initialization.KaimingFanOut:
                yield return $"nn.init.kaiming_normal_({variable}.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);";
                if (member.Leaf is ConvPlan { Bias: true }) yield return $"nn.init.zeros_({variable}.bias);";
                break;
            case Model.Initialization.OnesAndZeros:
                yield return $"nn.init.ones_({variable}.weight);";
                yield return $"nn.init.zeros_({variable}.bias);";
                break;
        }
    }
}
