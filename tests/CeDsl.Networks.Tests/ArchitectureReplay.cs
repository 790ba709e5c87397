using CeDsl.Architecture;
using CeDsl.Folding;
using CeDsl.Layers;
using CeDsl.Selective;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CeDsl.Networks.Tests;

/// <summary>
/// Evaluates an architecture the way an exporter reads it: the nodes in order, each operation from its values
/// alone and its parameters and buffers from a state dict under the node's module path, never the module that
/// was described. TorchSharp's modules become functional calls with the operation's arguments; CeDsl's own
/// layers are built anew from the operation's values (as the PyTorch twin's layers would be) and given the
/// node's state. Evaluation mode only (dropout is the identity, norms use their running statistics).
/// </summary>
internal static class ArchitectureReplay
{
    public static Tensor Evaluate(ModuleArchitecture architecture, IReadOnlyDictionary<string, Tensor> stateDict, Tensor input)
    {
        using var scope = NewDisposeScope();
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [ModuleArchitecture.InputName] = input };
        foreach (var node in architecture.Nodes)
        {
            var inputs = node.Inputs.Select(name => values[name]).ToArray();
            values[node.Name] = Apply(node, inputs, key => stateDict[string.IsNullOrEmpty(node.Module) ? key : node.Module + "." + key]);
        }
        return values[architecture.OutputName].MoveToOuterDisposeScope();
    }

    private static Tensor Apply(ArchitectureNode node, Tensor[] inputs, Func<string, Tensor> state)
    {
        var x = inputs[0];
        Tensor? Optional(bool present, string key) => present ? state(key) : null;
        return node.Operation switch
        {
            Conv2dOp c => F.conv2d(x, state("weight"), Optional(c.Bias, "bias"), strides: [c.Stride, c.Stride], padding: [c.Padding, c.Padding],
                dilation: [c.Dilation, c.Dilation], groups: c.Groups),
            BatchNormOp b => F.batch_norm(x, Optional(b.TrackRunningStats, "running_mean"), Optional(b.TrackRunningStats, "running_var"),
                Optional(b.Affine, "weight"), Optional(b.Affine, "bias"), training: !b.TrackRunningStats, momentum: b.Momentum, eps: b.Eps),
            GroupNormOp g => F.group_norm(x, g.Groups, Optional(g.Affine, "weight"), Optional(g.Affine, "bias"), g.Eps),
            InstanceNorm2dOp i => F.instance_norm(x, Optional(i.TrackRunningStats, "running_mean"), Optional(i.TrackRunningStats, "running_var"),
                Optional(i.Affine, "weight"), Optional(i.Affine, "bias"), use_input_stats: !i.TrackRunningStats, momentum: i.Momentum, eps: i.Eps),
            LayerNormOp l => F.layer_norm(x, [l.NormalizedShape], Optional(l.ElementwiseAffine, "weight"), Optional(l.ElementwiseAffine && l.Bias, "bias"), l.Eps),
            ReLUOp => F.relu(x),
            ReLU6Op => F.relu6(x),
            MaxPool2dOp p => F.max_pool2d(x, [p.KernelSize, p.KernelSize], [p.Stride, p.Stride], [p.Padding, p.Padding], [p.Dilation, p.Dilation], p.CeilMode),
            AvgPool2dOp p => F.avg_pool2d(x, [p.KernelSize, p.KernelSize], [p.Stride, p.Stride], [p.Padding, p.Padding], p.CeilMode, p.CountIncludePad),
            AdaptiveAvgPool2dOp p => F.adaptive_avg_pool2d(x, [p.OutputHeight, p.OutputWidth]),
            FlattenOp f => x.flatten(f.StartDim, f.EndDim),
            LinearOp l => F.linear(x, state("weight"), Optional(l.HasBias, "bias")),
            DropoutOp => x,
            SqueezeExcitationOp => x * F.linear(F.relu(F.linear(x.mean([2, 3]), state("fc.0.weight"), state("fc.0.bias"))), state("fc.2.weight"), state("fc.2.bias"))
                .sigmoid().unsqueeze(-1).unsqueeze(-1),
            AddOp => x + inputs[1],
            ConcatOp => cat(inputs, 1),
            ChunkOp c => x.chunk(c.Chunks, 1)[c.Index],
            ChannelShuffleOp s => ChannelShuffle(x, s.Groups),
            ChannelEquilibriumOp ce => Layer(new ChannelEquilibrium(ce.Channels, ce.GroupSize, ce.Reduction, ce.Iterations, ce.Pool, ce.Eps, ce.Momentum, dtype: x.dtype), ce, state, x),
            BatchDecorrelationOp bd => Layer(new BatchDecorrelation(bd.Channels, bd.GroupSize, bd.Iterations, bd.Pool, bd.Eps, bd.Momentum, dtype: x.dtype), bd, state, x),
            AdaptiveInstanceInverseOp aii => Layer(new AdaptiveInstanceInverse(aii.Channels, aii.Reduction, aii.Momentum, dtype: x.dtype), aii, state, x),
            FoldedChannelEquilibriumOp ce => Layer(new FoldedChannelEquilibrium(ce.Channels, ce.GroupSize, ce.Reduction, ce.InPlace, dtype: x.dtype), ce, state, x),
            FoldedAdaptiveInstanceInverseOp aii => Layer(new FoldedAdaptiveInstanceInverse(aii.Channels, aii.Reduction, aii.InPlace, dtype: x.dtype), aii, state, x),
            SelectiveConv2dOp s => Layer(new SelectiveConv2d(s.InChannels, s.OutChannels, s.KernelSize, s.Stride, s.Padding, s.Dropout, s.Gamma, s.K, s.NMax,
                dtype: x.dtype, alignCorners: s.AlignCorners), s, state, x),
            PrunedSelectiveConv2dOp p => Layer(new PrunedSelectiveConv2d(p.InChannels, p.OutChannels, p.KernelSize, p.Stride, p.Padding, p.Dropout, dtype: x.dtype), p, state, x),
            _ => throw new NotSupportedException($"node '{node.Name}': no replay of {node.Operation.Kind}"),
        };
    }

    /// <summary>A CeDsl layer built from the operation's values, given exactly the operation's state entries (strict), in evaluation mode.</summary>
    private static Tensor Layer(nn.Module<Tensor, Tensor> layer, Operation operation, Func<string, Tensor> state, Tensor x)
    {
        using (layer)
        {
            var entries = operation.State.ToDictionary(entry => entry.Name, entry => state(entry.Name));
            layer.load_state_dict(entries, strict: true);
            layer.eval();
            return layer.call(x);
        }
    }

    private static Tensor ChannelShuffle(Tensor x, long groups)
    {
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        return x.view(n, groups, c / groups, h, w).transpose(1, 2).reshape(n, c, h, w);
    }
}
