using System.Globalization;
using CeDsl.Architecture;
using CeDsl.Layers;
using Onnx;
using TorchSharp;
using static CeDsl.Onnx.OnnxGraph;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CeDsl.Onnx;

/// <summary>
/// Writes each architecture node as standard ONNX operators (opset 17) computing the module's evaluation
/// output, its parameters and buffers read from the state dict under the node's module path. What CeDsl's
/// layers compute is in docs/semantics/channel-equilibrium.md and docs/semantics/selective-convolution.md;
/// here it is spelled with ReduceMean, Gemm, LayerNormalization, Sigmoid, MatMul and friends.
/// </summary>
internal sealed class OperationWriter(OnnxGraph graph, ModuleArchitecture architecture, IReadOnlyDictionary<string, Tensor> state)
{
    /// <summary>Writes <paramref name="node"/> reading the ONNX values <paramref name="inputs"/>; returns the value holding its output.</summary>
    public string Write(ArchitectureNode node, IReadOnlyList<string> inputs)
    {
        var x = inputs[0];
        string name = node.Name;
        return node.Operation switch
        {
            Conv2dOp c => Convolution(name, x, State(node, "weight"), c.Bias ? State(node, "bias") : null, c.KernelSize, c.Stride, c.Padding, c.Dilation, c.Groups),
            BatchNorm2dOp b => BatchNorm(node, x, b.Affine, b.TrackRunningStats, b.Eps),
            BatchNorm1dOp b => graph.Node("Reshape", name, [BatchNorm(node, graph.Node("Reshape", name + "/as_map", [x, graph.Int64s(0, b.Features, 1)]), b.Affine, b.TrackRunningStats, b.Eps, name + "/normalized"),
                graph.Int64s(0, b.Features)]),
            GroupNormOp g => GroupNorm(node, x, g),
            InstanceNorm2dOp i => i.TrackRunningStats
                ? BatchNorm(node, x, i.Affine, trackRunningStats: true, i.Eps)
                : AffinePerChannel(node, Normalize(name + (i.Affine ? "/normalized" : ""), x, [2, 3], i.Eps), i.Affine, i.Features),
            LayerNormOp l => graph.Node("LayerNormalization", name,
                [x, Affine(node, l.ElementwiseAffine, "weight", l.NormalizedShape, 1f), l.ElementwiseAffine && l.Bias ? State(node, "bias") : ""],
                Int("axis", -1), Float("epsilon", l.Eps)),
            ReLUOp => graph.Node("Relu", name, [x]),
            ReLU6Op => graph.Node("Clip", name, [x, graph.Scalar(0f), graph.Scalar(6f)]),
            MaxPool2dOp p => graph.Node("MaxPool", name, [x], Ints("kernel_shape", p.KernelSize, p.KernelSize), Ints("strides", p.Stride, p.Stride),
                Ints("pads", p.Padding, p.Padding, p.Padding, p.Padding), Ints("dilations", p.Dilation, p.Dilation), Int("ceil_mode", p.CeilMode ? 1 : 0)),
            AvgPool2dOp p => graph.Node("AveragePool", name, [x], Ints("kernel_shape", p.KernelSize, p.KernelSize), Ints("strides", p.Stride, p.Stride),
                Ints("pads", p.Padding, p.Padding, p.Padding, p.Padding), Int("ceil_mode", p.CeilMode ? 1 : 0), Int("count_include_pad", p.CountIncludePad ? 1 : 0)),
            AdaptiveAvgPool2dOp p => AdaptiveAveragePool(node, x, p),
            FlattenOp => graph.Node("Flatten", name, [x], Int("axis", 1)),
            LinearOp l => graph.Node("Gemm", name, [x, State(node, "weight"), l.HasBias ? State(node, "bias") : ""], Int("transB", 1)),
            DropoutOp => x, // the identity in evaluation
            SqueezeExcitationOp se => SqueezeExcitation(node, x, se),
            AddOp => graph.Node("Add", name, [x, inputs[1]]),
            ConcatOp => graph.Node("Concat", name, inputs, Int("axis", 1)),
            ChunkOp c => Chunk(node, x, c),
            ChannelShuffleOp s => ChannelShuffle(node, x, s.Groups),
            ChannelEquilibriumOp ce => ChannelEquilibrium(node, x, ce),
            BatchDecorrelationOp bd => BlockDiagonalMap(name, x, State(node, "running_wm"), bd.Groups, bd.GroupSize, InputShape(node)),
            AdaptiveInstanceInverseOp aii => ScaleChannels(name, x, graph.Node("Div", name + "/factor", [Gate(node, x, ""), RunningScale(node, "running_scale")]), aii.Channels),
            FoldedChannelEquilibriumOp ce => FoldedChannelEquilibrium(node, x, ce),
            FoldedAdaptiveInstanceInverseOp aii => ScaleChannels(name, x, graph.Node("Mul", name + "/factor", [Gate(node, x, ""), State(node, "gate_scale")]), aii.Channels),
            SelectiveConv2dOp s => SelectiveConvolution(node, ShiftReallocatedChannels(node, x, s), s.KernelSize, s.Stride, s.Padding, s.NormEps, gate: State(node, "is_open")),
            PrunedSelectiveConv2dOp p => SelectiveConvolution(node, graph.Node("Gather", name + "/kept", [x, Indices(node, "kept")], Int("axis", 1)), p.KernelSize, p.Stride, p.Padding, p.NormEps, gate: null),
            _ => throw new OnnxExportException(
                $"{architecture.Name}: node '{name}'{Where(node)} is a {node.Operation.Kind}, which has no ONNX form in this exporter; nothing was written.",
                name, node.Module),
        };
    }

    private string Convolution(string name, string x, string weight, string? bias, long kernel, long stride, long padding, long dilation, long groups) =>
        graph.Node("Conv", name, bias is null ? [x, weight] : [x, weight, bias],
            Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("pads", padding, padding, padding, padding),
            Ints("dilations", dilation, dilation), Int("group", groups));

    /// <summary>Batch normalization with the running statistics, or (without them) with the batch's own, as PyTorch's modules evaluate.</summary>
    private string BatchNorm(ArchitectureNode node, string x, bool affine, bool trackRunningStats, double eps, string? output = null, string prefix = "")
    {
        string name = output ?? node.Name;
        long channels = node.Shape.Channels;
        var scale = Affine(node, affine, prefix + "weight", channels, 1f);
        var bias = Affine(node, affine, prefix + "bias", channels, 0f);
        if (trackRunningStats)
            return graph.Node("BatchNormalization", name, [x, scale, bias, State(node, prefix + "running_mean"), State(node, prefix + "running_var")], Float("epsilon", eps));

        // Statistics of the batch over (N, H, W), as F.batch_norm in training mode.
        var normalized = Normalize(name + "/normalized", x, [0, 2, 3], eps);
        var perChannel = graph.Int64s(channels, 1, 1);
        var scaled = graph.Node("Mul", name + "/scaled", [normalized, graph.Node("Reshape", name + "/scale", [scale, perChannel])]);
        return graph.Node("Add", name, [scaled, graph.Node("Reshape", name + "/shift", [bias, perChannel])]);
    }

    /// <summary>
    /// (x - mean) / sqrt(variance + eps) over <paramref name="axes"/>, the biased variance of the centred values, step by step
    /// as PyTorch's norms compute it (group, instance and batch statistics alike).
    /// </summary>
    private string Normalize(string name, string x, long[] axes, double eps)
    {
        var mean = graph.Node("ReduceMean", name + "_mean", [x], Ints("axes", axes), Int("keepdims", 1));
        var centred = graph.Node("Sub", name + "_centred", [x, mean]);
        var variance = graph.Node("ReduceMean", name + "_variance", [graph.Node("Mul", name + "_squares", [centred, centred])], Ints("axes", axes), Int("keepdims", 1));
        var deviation = graph.Node("Sqrt", name + "_deviation", [graph.Node("Add", name + "_variance_eps", [variance, graph.Scalar((float)eps)])]);
        return graph.Node("Div", name, [centred, deviation]);
    }

    /// <summary><paramref name="x"/> times <c>weight</c> plus <c>bias</c> per channel (C, 1, 1) when <paramref name="affine"/>; else <paramref name="x"/>.</summary>
    private string AffinePerChannel(ArchitectureNode node, string x, bool affine, long channels)
    {
        if (!affine)
            return x;
        var perChannel = graph.Int64s(channels, 1, 1);
        var scaled = graph.Node("Mul", node.Name + "/scaled", [x, graph.Node("Reshape", node.Name + "/scale", [State(node, "weight"), perChannel])]);
        return graph.Node("Add", node.Name, [scaled, graph.Node("Reshape", node.Name + "/shift", [State(node, "bias"), perChannel])]);
    }

    /// <summary>GroupNorm: the normalization over (N, G, C/G * H * W), then the per-channel affine map.</summary>
    private string GroupNorm(ArchitectureNode node, string x, GroupNormOp g)
    {
        string name = node.Name;
        var shape = node.Shape;
        var grouped = graph.Node("Reshape", name + "/grouped", [x, graph.Int64s(0, g.Groups, -1)]);
        var normalized = Normalize(name + "/normalized", grouped, [2], g.Eps);
        var map = graph.Node("Reshape", name + (g.Affine ? "/map" : ""), [normalized, graph.Int64s(0, shape.Channels, shape.Height, shape.Width)]);
        return AffinePerChannel(node, map, g.Affine, g.Channels);
    }

    private string AdaptiveAveragePool(ArchitectureNode node, string x, AdaptiveAvgPool2dOp p)
    {
        var input = InputShape(node);
        if (p.OutputHeight == 1 && p.OutputWidth == 1)
            return graph.Node("GlobalAveragePool", node.Name, [x]);
        if (input.Height % p.OutputHeight == 0 && input.Width % p.OutputWidth == 0)
        {
            long kh = input.Height / p.OutputHeight, kw = input.Width / p.OutputWidth;
            return graph.Node("AveragePool", node.Name, [x], Ints("kernel_shape", kh, kw), Ints("strides", kh, kw));
        }
        throw new OnnxExportException(
            $"{architecture.Name}: node '{node.Name}'{Where(node)} is an AdaptiveAvgPool2d from {input.Height}x{input.Width} to {p.OutputHeight}x{p.OutputWidth}: " +
            "its windows differ in size, and no ONNX pooling operator computes that. Choose an input size divisible by the output size; nothing was written.",
            node.Name, node.Module);
    }

    /// <summary>SE: X times the sigmoid gate of the two linear layers of its global average.</summary>
    private string SqueezeExcitation(ArchitectureNode node, string x, SqueezeExcitationOp se)
    {
        string name = node.Name;
        var squeezed = graph.Node("Flatten", name + "/squeezed", [graph.Node("GlobalAveragePool", name + "/pooled", [x])], Int("axis", 1));
        var hidden = graph.Node("Relu", name + "/fc.1", [graph.Node("Gemm", name + "/fc.0", [squeezed, State(node, "fc.0.weight"), State(node, "fc.0.bias")], Int("transB", 1))]);
        var gate = graph.Node("Sigmoid", name + "/fc.3", [graph.Node("Gemm", name + "/fc.2", [hidden, State(node, "fc.2.weight"), State(node, "fc.2.bias")], Int("transB", 1))]);
        return ScaleChannels(name, x, gate, se.Channels);
    }

    private string Chunk(ArchitectureNode node, string x, ChunkOp c)
    {
        long size = InputShape(node).Channels / c.Chunks;
        return graph.Node("Slice", node.Name, [x, graph.Int64s(c.Index * size), graph.Int64s((c.Index + 1) * size), graph.Int64s(1)]);
    }

    private string ChannelShuffle(ArchitectureNode node, string x, long groups)
    {
        var shape = node.Shape;
        var split = graph.Node("Reshape", node.Name + "/split", [x, graph.Int64s(0, groups, shape.Channels / groups, shape.Height, shape.Width)]);
        var transposed = graph.Node("Transpose", node.Name + "/transposed", [split], Ints("perm", 0, 2, 1, 3, 4));
        return graph.Node("Reshape", node.Name, [transposed, graph.Int64s(0, shape.Channels, shape.Height, shape.Width)]);
    }

    /// <summary>
    /// CE in evaluation: one map per sample, lambda running_wm + diag((1 - lambda) y / running_scale), applied to
    /// the groups of channels; lambda = sigmoid(x_weight), y the AII gate of the instance variance.
    /// </summary>
    private string ChannelEquilibrium(ArchitectureNode node, string x, ChannelEquilibriumOp ce)
    {
        string name = node.Name;
        var lambda = graph.Node("Sigmoid", name + "/lambda", [State(node, "x_weight")]);
        var factor = graph.Node("Div", name + "/AR.factor", [Gate(node, x, "AR."), RunningScale(node, "AR.running_scale")]);
        var diagonal = graph.Node("Mul", name + "/diagonal", [graph.Node("Sub", name + "/one_minus_lambda", [graph.Scalar(1f), lambda]), factor]);
        var shared = graph.Node("Mul", name + "/shared", [lambda, State(node, "running_wm")]);
        return BlockDiagonalMap(name, x, PerSampleMap(name, shared, diagonal, ce.Groups, ce.GroupSize), ce.Groups, ce.GroupSize, InputShape(node));
    }

    /// <summary>Folded CE: one map per sample, weight + diag(AR.gate_scale y), applied to the groups of channels.</summary>
    private string FoldedChannelEquilibrium(ArchitectureNode node, string x, FoldedChannelEquilibriumOp ce)
    {
        string name = node.Name;
        var diagonal = graph.Node("Mul", name + "/AR.factor", [Gate(node, x, "AR."), State(node, "AR.gate_scale")]);
        return BlockDiagonalMap(name, x, PerSampleMap(name, State(node, "weight"), diagonal, ce.Groups, ce.GroupSize), ce.Groups, ce.GroupSize, InputShape(node));
    }

    /// <summary>(N, G, d, d): <paramref name="shared"/> (G, d, d) plus the diagonal matrices of <paramref name="diagonal"/> (N, C).</summary>
    private string PerSampleMap(string name, string shared, string diagonal, long groups, long groupSize)
    {
        var column = graph.Node("Reshape", name + "/diagonal_column", [diagonal, graph.Int64s(0, groups, groupSize, 1)]);
        var identity = graph.Add(name + "/identity", [groupSize, groupSize], Identity(groupSize));
        var diagonalMatrices = graph.Node("Mul", name + "/diagonal_matrices", [column, identity]);
        return graph.Node("Add", name + "/map", [shared, diagonalMatrices]);
    }

    /// <summary>The block-diagonal map (G, d, d) or (N, G, d, d) applied to each group of d channels: (N, G, d, H*W) by MatMul.</summary>
    private string BlockDiagonalMap(string name, string x, string map, long groups, long groupSize, TensorShape shape)
    {
        var blocks = graph.Node("Reshape", name + "/blocks", [x, graph.Int64s(0, groups, groupSize, shape.Height * shape.Width)]);
        var mapped = graph.Node("MatMul", name + "/mapped", [map, blocks]);
        return graph.Node("Reshape", name, [mapped, graph.Int64s(0, shape.Channels, shape.Height, shape.Width)]);
    }

    /// <summary>X (N, C, H, W) times the per-(sample, channel) <paramref name="factor"/> (N, C).</summary>
    private string ScaleChannels(string name, string x, string factor, long channels) =>
        graph.Node("Mul", name, [x, graph.Node("Reshape", name + "/factor_map", [factor, graph.Int64s(0, channels, 1, 1)])]);

    /// <summary>
    /// The AII gate y (N, C) of the unbiased instance variance over H*W: sigmoid(fc.3(relu(LayerNorm(fc.0(v))))), the
    /// variance from values centred by their instance mean, as the layers compute it.
    /// </summary>
    private string Gate(ArchitectureNode node, string x, string prefix)
    {
        string name = node.Name + "/" + prefix;
        var positions = InputShape(node).Height * InputShape(node).Width;
        var mean = graph.Node("ReduceMean", name + "mean", [x], Ints("axes", 2, 3), Int("keepdims", 1));
        var centred = graph.Node("Sub", name + "centred", [x, mean]);
        var squares = graph.Node("ReduceSumSquare", name + "squared_deviations", [centred], Ints("axes", 2, 3), Int("keepdims", 0));
        var variance = graph.Node("Div", name + "variance", [squares, graph.Scalar(positions - 1)]);
        var reduced = graph.Node("Gemm", name + "fc.0", [variance, State(node, prefix + "fc.0.weight")], Int("transB", 1));
        // The gate's nn.LayerNorm is built with PyTorch's default epsilon, the norms' default.
        var normalized = graph.Node("LayerNormalization", name + "fc.1", [reduced, State(node, prefix + "fc.1.weight"), State(node, prefix + "fc.1.bias")],
            Int("axis", -1), Float("epsilon", LayerDefaults.Eps));
        var activated = graph.Node("Relu", name + "fc.2", [normalized]);
        var expanded = graph.Node("Gemm", name + "fc.3", [activated, State(node, prefix + "fc.3.weight")], Int("transB", 1));
        return graph.Node("Sigmoid", name + "fc.4", [expanded]);
    }

    /// <summary>BN (<c>norm</c>) -&gt; ReLU -&gt; x * is_open (when gated) -&gt; convolution without bias (<c>conv</c>); dropout is the identity in evaluation.</summary>
    private string SelectiveConvolution(ArchitectureNode node, string x, long kernel, long stride, long padding, double normEps, string? gate)
    {
        string name = node.Name;
        var normalized = BatchNorm(node, x, affine: true, trackRunningStats: true, normEps, output: name + "/norm", prefix: "norm.");
        var activated = graph.Node("Relu", name + "/relu", [normalized]);
        if (gate is not null)
            activated = graph.Node("Mul", name + "/gated", [activated, graph.Node("Reshape", name + "/is_open_map", [gate, graph.Int64s(-1, 1, 1)])]);
        return Convolution(name, activated, State(node, "conv.weight"), null, kernel, stride, padding, 1, 1);
    }

    /// <summary>
    /// Replaces every re-allocated channel (<c>_ind_ptr</c> &gt;= 0) by its source channel shifted by its <c>_bias</c>: the affine
    /// grid is a constant of the state and the input size (computed here with the module's own function), the sampling
    /// ONNX's GridSample (bilinear, border padding), the copies taking their slots by one Gather over [input, shifted].
    /// </summary>
    private string ShiftReallocatedChannels(ArchitectureNode node, string x, SelectiveConv2dOp s)
    {
        if (s.K == 0)
            return x;
        long[] pointers = Longs(StateTensor(node, "_ind_ptr"));
        long[] copies = Enumerable.Range(0, pointers.Length).Where(i => pointers[i] >= 0).Select(i => (long)i).ToArray();
        if (copies.Length == 0)
            return x;

        string name = node.Name;
        var input = InputShape(node);
        long count = copies.Length, height = input.Height, width = input.Width;
        Tensor grid;
        using (var scope = NewDisposeScope())
        {
            var copyIndex = tensor(copies);
            var bias = StateTensor(node, "_bias").detach().cpu();
            var translation = bias.index_select(0, copyIndex) / ((height + width) / 4.0);
            var theta = cat([StateTensor(node, "_eye").detach().cpu().narrow(1, 0, 2).expand(count, 2, 2), translation.unsqueeze(2)], 2);
            grid = F.affine_grid(theta, [count, 1, height, width], s.AlignCorners).MoveToOuterDisposeScope();
        }
        using (grid)
        {
            var sources = graph.Node("Gather", name + "/shift_sources", [x, graph.Initializer(name + "/shift_source_index", [count], copies.Select(c => pointers[c]).ToArray())], Int("axis", 1));
            var byCopy = graph.Node("Transpose", name + "/shift_by_copy", [sources], Ints("perm", 1, 0, 2, 3));
            var sampled = graph.Node("GridSample", name + "/shifted_by_copy", [byCopy, graph.Initializer(name + "/shift_grid", grid)],
                Text("mode", "bilinear"), Text("padding_mode", "border"), Int("align_corners", s.AlignCorners ? 1 : 0));
            var shifted = graph.Node("Transpose", name + "/shifted", [sampled], Ints("perm", 1, 0, 2, 3));
            var candidates = graph.Node("Concat", name + "/shift_candidates", [x, shifted], Int("axis", 1));
            long[] take = new long[pointers.Length];
            for (int c = 0; c < take.Length; c++)
                take[c] = c;
            for (int j = 0; j < copies.Length; j++)
                take[copies[j]] = pointers.Length + j;
            return graph.Node("Gather", name + "/reallocated", [candidates, graph.Initializer(name + "/reallocated_index", [take.Length], take)], Int("axis", 1));
        }
    }

    private string RunningScale(ArchitectureNode node, string key)
    {
        double scale = StateTensor(node, key).ToDouble();
        if (!(scale > 0) || double.IsInfinity(scale))
            throw new OnnxExportException(
                $"{architecture.Name}: node '{node.Name}'{Where(node)}: {key} is {scale.ToString(CultureInfo.InvariantCulture)}, so the evaluation output (which divides by it) is undefined: " +
                "the layer has never run a training step. Train it, or load a state dict with a trained running_scale; nothing was written.",
                node.Name, node.Module);
        return State(node, key);
    }

    /// <summary>The initializer of a node's floating-point state entry (once per key: a module called twice shares it).</summary>
    private string State(ArchitectureNode node, string key)
    {
        string full = Key(node, key);
        return written.TryGetValue(full, out var name) ? name : written[full] = graph.Initializer(full, StateTensor(node, key));
    }

    private readonly Dictionary<string, string> written = new(StringComparer.Ordinal);

    /// <summary>A node's int64 index buffer as an initializer.</summary>
    private string Indices(ArchitectureNode node, string key)
    {
        string full = Key(node, key);
        if (written.TryGetValue(full, out var name))
            return name;
        var values = Longs(StateTensor(node, key));
        return written[full] = graph.Initializer(full, [values.Length], values);
    }

    /// <summary>The state entry's initializer for an affine norm, or a constant (1 for a scale, 0 for a shift) without one.</summary>
    private string Affine(ArchitectureNode node, bool affine, string key, long size, float constant) =>
        affine ? State(node, key) : graph.Add(graph.Fresh(node.Name + "/" + key), [size], Enumerable.Repeat(constant, (int)size).ToArray());

    private Tensor StateTensor(ArchitectureNode node, string key) =>
        state.TryGetValue(Key(node, key), out var tensor) ? tensor
            : throw new OnnxExportException($"{architecture.Name}: the state dict has no '{Key(node, key)}' for node '{node.Name}'; nothing was written.", node.Name, node.Module);

    private TensorShape InputShape(ArchitectureNode node) => architecture.ShapeOf(node.Inputs[0]);

    private static string Key(ArchitectureNode node, string key) => string.IsNullOrEmpty(node.Module) ? key : node.Module + "." + key;

    private static string Where(ArchitectureNode node) => node.Module is null ? "" : $" (module '{node.Module}')";

    private static long[] Longs(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        return tensor.cpu().to(ScalarType.Int64).data<long>().ToArray();
    }

    private static float[] Identity(long size)
    {
        var values = new float[size * size];
        for (long i = 0; i < size; i++)
            values[i * size + i] = 1f;
        return values;
    }
}
