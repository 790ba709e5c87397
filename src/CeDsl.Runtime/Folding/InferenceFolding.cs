using System.Diagnostics;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Folding;

/// <summary>
/// Inference folding (docs/semantics/channel-equilibrium.md, "Inference folding"): turns trained
/// <c>conv -> norm -> block</c> chains into new inference-only modules whose outputs equal the
/// evaluation-mode outputs of the originals. The originals are never modified.
/// (Not named <c>Fold</c>: that is TorchSharp's <c>nn.Fold</c> module, in scope wherever
/// <c>TorchSharp.Modules</c> is.)
/// </summary>
/// <remarks>
/// <para>What folds: a BatchNorm2d into the convolution (w' = w * gamma / sqrt(var + eps),
/// b' = beta + (b - mean) * gamma / sqrt(var + eps)); a BD-only block into that convolution too
/// (w'' = running_wm @ w', b'' = running_wm @ b', block-diagonal over the output channels);
/// a CE block into a <see cref="FoldedChannelEquilibrium"/> (lambda * running_wm and
/// (1 - lambda) / running_scale precomputed); an AII block into a
/// <see cref="FoldedAdaptiveInstanceInverse"/> (gate scaled by 1 / running_scale). An SE block is
/// copied unchanged.</para>
/// <para>What is kept: a GroupNorm, InstanceNorm2d or LayerNorm normalizes with per-sample
/// statistics, so it cannot enter the convolution; it is copied unchanged, the convolution is
/// copied as it is, and the block is folded on its own (a BD-only block then becomes a grouped
/// 1x1 convolution).</para>
/// <para>Grouped convolutions: BatchNorm folding keeps the groups. A BD group of d contiguous
/// channels mixes output channels; when it spans several convolution groups (for instance after a
/// depthwise convolution) the folded convolution has the coarser grouping
/// <see cref="DecorrelatedGroups"/> (exact, with zero weights between unconnected channels; it costs
/// more multiply-adds per output than the grouped convolution, d times more after a depthwise one).</para>
/// <para>Refusals: <see cref="InvalidOperationException"/> naming the module for a module in
/// training mode (any of its submodules included), a BatchNorm2d without running statistics
/// (track_running_stats = false), statistics never estimated, and folded values that are not
/// finite; <see cref="ArgumentException"/> for unsupported module kinds and mismatched channel
/// counts, element types or devices. "Never estimated" means every running statistic still holds
/// exactly its initial value: BatchNorm2d num_batches_tracked = 0 with running_mean = 0 and
/// running_var = 1; BatchDecorrelation running_mean = 0 with running_wm = I; CE and AII
/// running_scale = 0 (a non-positive or non-finite running_scale is refused too, evaluation divides by it).</para>
/// </remarks>
public static class InferenceFolding
{
    /// <summary>
    /// Folds the chain <paramref name="conv"/> -> <paramref name="norm"/> -> <paramref name="block"/>
    /// (all in evaluation mode) into one <see cref="FoldedChain"/>; see that class for its state-dict names.
    /// </summary>
    /// <param name="conv">The convolution.</param>
    /// <param name="norm">BatchNorm2d (folded), GroupNorm, InstanceNorm2d or LayerNorm (kept), or null.</param>
    /// <param name="block"><see cref="BatchDecorrelation"/>, <see cref="Layers.ChannelEquilibrium"/>,
    /// <see cref="Layers.AdaptiveInstanceInverse"/>, <see cref="SqueezeExcitation"/>, or null.</param>
    /// <param name="names">The modules' names in the network, for error messages.</param>
    public static FoldedChain Chain(Conv2d conv, nn.Module<Tensor, Tensor>? norm, nn.Module<Tensor, Tensor>? block = null, ChainNames? names = null)
    {
        ArgumentNullException.ThrowIfNull(conv);
        names ??= new ChainNames();
        CheckChain(conv, norm, block, names);

        bool normFolds = norm is null or BatchNorm2d;
        var parts = new List<nn.Module>();
        try
        {
            Conv2d foldedConv;
            using (var state = ConvolutionState.Of(conv, Describe(conv, names.Conv)))
            using (var normalized = norm is BatchNorm2d bn ? FoldBatchNorm(state, bn, names.Norm) : null)
            using (var decorrelated = normFolds && block is BatchDecorrelation bd ? FoldDecorrelation(normalized ?? state, bd, names.Block) : null)
            {
                foldedConv = (decorrelated ?? normalized ?? state).ToConvolution(conv);
            }
            parts.Add(foldedConv);

            var keptNorm = normFolds ? null : CopyNorm(norm!, conv.out_channels);
            if (keptNorm is not null)
                parts.Add(keptNorm);

            nn.Module<Tensor, Tensor>? foldedBlock = block switch
            {
                null => null,
                BatchDecorrelation when normFolds => null,
                BatchDecorrelation decorrelation => DecorrelationMap(decorrelation, names.Block),
                Layers.ChannelEquilibrium ce => ChannelEquilibrium(ce, names.Block),
                Layers.AdaptiveInstanceInverse aii => AdaptiveInstanceInverse(aii, names.Block),
                SqueezeExcitation se => CopySqueezeExcitation(se),
                _ => throw new UnreachableException(),
            };
            var chain = new FoldedChain(foldedConv, keptNorm, foldedBlock);
            chain.eval();
            return chain;
        }
        catch
        {
            // A refusal after some parts were built: free their native memory now, not at finalization.
            foreach (var part in parts)
                part.Dispose();
            throw;
        }
    }

    /// <summary>conv -> BatchNorm2d as one new convolution with bias.</summary>
    public static Conv2d BatchNorm(Conv2d conv, BatchNorm2d bn, ChainNames? names = null)
    {
        ArgumentNullException.ThrowIfNull(conv);
        ArgumentNullException.ThrowIfNull(bn);
        names ??= new ChainNames();
        CheckChain(conv, bn, null, names);
        using var state = ConvolutionState.Of(conv, Describe(conv, names.Conv));
        using var folded = FoldBatchNorm(state, bn, names.Norm);
        return folded.ToConvolution(conv);
    }

    /// <summary>
    /// conv -> BatchDecorrelation as one new convolution (pass a convolution with its BatchNorm
    /// already folded, see <see cref="BatchNorm"/>). Its groups are <see cref="DecorrelatedGroups"/>.
    /// </summary>
    public static Conv2d Decorrelation(Conv2d conv, BatchDecorrelation bd, ChainNames? names = null)
    {
        ArgumentNullException.ThrowIfNull(conv);
        ArgumentNullException.ThrowIfNull(bd);
        names ??= new ChainNames();
        CheckChain(conv, null, bd, names);
        using var state = ConvolutionState.Of(conv, Describe(conv, names.Conv));
        using var folded = FoldDecorrelation(state, bd, names.Block);
        return folded.ToConvolution(conv);
    }

    /// <summary>A trained CE block (evaluation mode) as a <see cref="FoldedChannelEquilibrium"/>.</summary>
    public static FoldedChannelEquilibrium ChannelEquilibrium(Layers.ChannelEquilibrium ce, string name = "ce")
    {
        ArgumentNullException.ThrowIfNull(ce);
        string module = Describe(ce, name);
        RequireEvaluationMode(ce, module);
        var state = ce.state_dict();
        var runningScale = RunningScale(state["AR.running_scale"], module, "AR.running_scale");
        var sample = state["AR.fc.0.weight"];
        var gate = new FoldedAdaptiveInstanceInverse(ce.Channels, sample.shape[0], sample.device, sample.dtype);
        var folded = new FoldedChannelEquilibrium(ce.Channels, ce.GroupSize, gate, sample.device, sample.dtype);
        using (NewDisposeScope())
        using (no_grad())
        {
            var lambda = state["x_weight"].to(float64).sigmoid();
            var target = folded.state_dict();
            target["weight"].copy_(lambda * state["running_wm"].to(float64));
            target["AR.gate_scale"].copy_((1 - lambda) / runningScale);
            CopyGate(state, "AR.", target, "AR.");
        }
        RequireFinite(folded, module);
        folded.eval();
        return folded;
    }

    /// <summary>A trained AII block (evaluation mode) as a <see cref="FoldedAdaptiveInstanceInverse"/>.</summary>
    public static FoldedAdaptiveInstanceInverse AdaptiveInstanceInverse(Layers.AdaptiveInstanceInverse aii, string name = "aii")
    {
        ArgumentNullException.ThrowIfNull(aii);
        string module = Describe(aii, name);
        RequireEvaluationMode(aii, module);
        var state = aii.state_dict();
        var runningScale = RunningScale(state["running_scale"], module, "running_scale");
        var sample = state["fc.0.weight"];
        var folded = new FoldedAdaptiveInstanceInverse(aii.Channels, sample.shape[0], sample.device, sample.dtype);
        using (NewDisposeScope())
        using (no_grad())
        {
            var target = folded.state_dict();
            target["gate_scale"].fill_(1 / runningScale);
            CopyGate(state, "", target, "");
        }
        RequireFinite(folded, module);
        folded.eval();
        return folded;
    }

    /// <summary>
    /// The group count of a convolution with <paramref name="outChannels"/> outputs in
    /// <paramref name="convGroups"/> groups after a block-diagonal map over contiguous groups of
    /// <paramref name="groupSize"/> output channels is folded into it: every new group must hold whole
    /// map groups and whole convolution groups, so it spans lcm(outChannels / convGroups, groupSize)
    /// output channels. Equal to <paramref name="convGroups"/> when each map group lies inside one
    /// convolution group (always for an ungrouped convolution). <paramref name="groupSize"/> may be a
    /// BD layer's requested group size: it is resolved with <see cref="GroupSizeRule"/> (halved until
    /// it divides <paramref name="outChannels"/>), as the layer does.
    /// </summary>
    public static long DecorrelatedGroups(long outChannels, long convGroups, int groupSize)
    {
        if (outChannels <= 0 || convGroups <= 0 || outChannels % convGroups != 0)
            throw new ArgumentOutOfRangeException(nameof(convGroups), convGroups,
                $"The group count must be positive and divide the output channel count {outChannels}.");
        if (groupSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "The group size must be positive.");
        groupSize = GroupSizeRule.Resolve(outChannels, groupSize);
        long perGroup = outChannels / convGroups;
        long span = perGroup / GreatestCommonDivisor(perGroup, groupSize) * groupSize;
        return outChannels / span;
    }

    private static ConvolutionState FoldBatchNorm(ConvolutionState state, BatchNorm2d bn, string name)
    {
        string module = Describe(bn, name);
        if (!bn.track_running_stats || bn.running_mean is null || bn.running_var is null)
            throw new InvalidOperationException(
                $"Cannot fold {module}: it has no running statistics (track_running_stats = false), so even in evaluation mode " +
                "it normalizes with the statistics of each batch, which no convolution can reproduce.");
        using var scope = NewDisposeScope();
        var mean = bn.running_mean.detach().to(float64);
        var variance = bn.running_var.detach().to(float64);
        bool counted = bn.num_batches_tracked is { } count && count.to(float64).item<double>() != 0;
        if (!counted && mean.count_nonzero().item<long>() == 0 && variance.eq(1).all().item<bool>())
            throw new InvalidOperationException(
                $"Cannot fold {module}: its running statistics were never estimated (num_batches_tracked is 0 and running_mean, " +
                "running_var still hold their initial zeros and ones). Train the network, or load a trained state dict, before folding.");

        var scale = (variance + bn.eps).rsqrt();
        if (bn.affine)
            scale = scale * bn.weight.detach().to(float64);
        var shift = -mean * scale;
        if (bn.affine)
            shift = shift + bn.bias!.detach().to(float64);
        return state.ThenPerChannel(scale, shift, module);
    }

    private static ConvolutionState FoldDecorrelation(ConvolutionState state, BatchDecorrelation bd, string name)
    {
        using var scope = NewDisposeScope();
        string module = Describe(bd, name);
        return state.ThenBlockDiagonal(EstimatedWhitening(bd, module), module);
    }

    /// <summary>running_wm (G, d, d) in float64, refused while it and running_mean hold their initial values.</summary>
    private static Tensor EstimatedWhitening(BatchDecorrelation bd, string module)
    {
        var state = bd.state_dict();
        var wm = state["running_wm"].detach().to(float64);
        var identity = eye(bd.GroupSize, dtype: float64, device: wm.device).expand_as(wm);
        if (wm.eq(identity).all().item<bool>() && state["running_mean"].count_nonzero().item<long>() == 0)
            throw new InvalidOperationException(
                $"Cannot fold {module}: its running statistics were never estimated (running_wm is exactly the identity and " +
                "running_mean exactly zero, their initial values). Train the network, or load a trained state dict, before folding.");
        return wm;
    }

    /// <summary>A BD-only block after a kept norm: running_wm as a grouped 1x1 convolution without bias.</summary>
    private static Conv2d DecorrelationMap(BatchDecorrelation bd, string name)
    {
        string module = Describe(bd, name);
        using (NewDisposeScope())
            EstimatedWhitening(bd, module);
        var runningWm = bd.state_dict()["running_wm"];
        var map = nn.Conv2d(bd.Channels, bd.Channels, 1, groups: bd.Groups, bias: false, device: runningWm.device, dtype: runningWm.dtype);
        using (no_grad())
            map.weight.copy_(runningWm.view(bd.Channels, bd.GroupSize, 1, 1));
        RequireFinite(map, module);
        map.eval();
        return map;
    }

    /// <summary>running_scale, refused unless positive and finite.</summary>
    private static double RunningScale(Tensor runningScale, string module, string key)
    {
        double value = runningScale.to(float64).item<double>();
        if (value == 0)
            throw new InvalidOperationException(
                $"Cannot fold {module}: its running statistics were never estimated ({key} is 0, its initial value, and the " +
                "evaluation output divides by it). Train the network, or load a trained state dict, before folding.");
        if (!(value > 0) || double.IsInfinity(value))
            throw new InvalidOperationException(
                $"Cannot fold {module}: {key} is {value}; the evaluation output divides by it, so it must be positive and finite.");
        return value;
    }

    /// <summary>Copies the AII gate's fc weights from <paramref name="source"/> to <paramref name="target"/>.</summary>
    private static void CopyGate(Dictionary<string, Tensor> source, string sourcePrefix, Dictionary<string, Tensor> target, string targetPrefix)
    {
        foreach (string key in new[] { "fc.0.weight", "fc.1.weight", "fc.1.bias", "fc.3.weight" })
            target[targetPrefix + key].copy_(source[sourcePrefix + key]);
    }

    private static nn.Module<Tensor, Tensor> CopyNorm(nn.Module<Tensor, Tensor> norm, long channels)
    {
        var sample = norm.parameters().Concat(norm.buffers()).FirstOrDefault();
        var device = sample?.device;
        var dtype = sample?.dtype;
        nn.Module<Tensor, Tensor> copy = norm switch
        {
            GroupNorm gn => nn.GroupNorm(gn.num_groups, channels, gn.eps, gn.affine, device, dtype),
            InstanceNorm2d instance => CopyInstanceNorm(instance, device, dtype),
            LayerNorm ln => nn.LayerNorm(ln.normalized_shape, ln.eps, ln.elementwise_affine, bias: ln.bias is not null, device, dtype),
            _ => throw new UnreachableException(),
        };
        CopyState(norm, copy);
        copy.eval();
        return copy;
    }

    private static InstanceNorm2d CopyInstanceNorm(InstanceNorm2d source, Device? device, ScalarType? dtype)
    {
        var copy = nn.InstanceNorm2d(source.num_features, source.eps, source.momentum ?? 0.1, source.affine, source.track_running_stats, device, dtype);
        copy.momentum = source.momentum;
        return copy;
    }

    private static SqueezeExcitation CopySqueezeExcitation(SqueezeExcitation se)
    {
        var sample = se.parameters().First();
        var copy = new SqueezeExcitation(se.Channels, se.Reduction, sample.device, sample.dtype);
        CopyState(se, copy);
        copy.eval();
        return copy;
    }

    private static void CopyState(nn.Module source, nn.Module target)
    {
        var from = source.state_dict();
        using var noGrad = no_grad();
        foreach (var (key, tensor) in target.state_dict())
            tensor.copy_(from[key]);
    }

    private static void CheckChain(Conv2d conv, nn.Module<Tensor, Tensor>? norm, nn.Module<Tensor, Tensor>? block, ChainNames names)
    {
        if (norm is not null && norm is not (BatchNorm2d or GroupNorm or InstanceNorm2d or LayerNorm))
            throw new ArgumentException(
                $"Cannot fold {Describe(norm, names.Norm)}: the norm of a chain must be a BatchNorm2d (folded into the convolution), " +
                "a GroupNorm, InstanceNorm2d or LayerNorm (kept as it is), or null.", nameof(norm));
        if (block is not null && block is not (BatchDecorrelation or Layers.ChannelEquilibrium or Layers.AdaptiveInstanceInverse or SqueezeExcitation))
            throw new ArgumentException(
                $"Cannot fold {Describe(block, names.Block)}: the block of a chain must be a {nameof(BatchDecorrelation)}, " +
                $"{nameof(Layers.ChannelEquilibrium)}, {nameof(Layers.AdaptiveInstanceInverse)}, {nameof(SqueezeExcitation)}, or null.",
                nameof(block));

        RequireEvaluationMode(conv, Describe(conv, names.Conv));
        if (norm is not null)
            RequireEvaluationMode(norm, Describe(norm, names.Norm));
        if (block is not null)
            RequireEvaluationMode(block, Describe(block, names.Block));

        long channels = conv.out_channels;
        if (norm is not null && NormChannels(norm) is { } normChannels && normChannels != channels)
            throw new ArgumentException(
                $"Cannot fold {Describe(norm, names.Norm)}: it normalizes {normChannels} channels, but {names.Conv} has {channels} outputs.",
                nameof(norm));
        long? blockChannels = block switch
        {
            BatchDecorrelation bd => bd.Channels,
            Layers.ChannelEquilibrium ce => ce.Channels,
            Layers.AdaptiveInstanceInverse aii => aii.Channels,
            SqueezeExcitation se => se.Channels,
            _ => null,
        };
        if (blockChannels is { } count && count != channels)
            throw new ArgumentException(
                $"Cannot fold {Describe(block!, names.Block)}: it was built for {count} channels, but {names.Conv} has {channels} outputs.",
                nameof(block));

        var dtype = conv.weight.dtype;
        foreach (var (module, name) in new[] { (norm, names.Norm), (block, names.Block) })
        {
            if (module is null)
                continue;
            foreach (var tensor in module.parameters().Concat(module.buffers()).Where(tensor => tensor.is_floating_point()))
            {
                if (tensor.dtype != dtype || tensor.device_type != conv.weight.device_type || tensor.device_index != conv.weight.device_index)
                    throw new ArgumentException(
                        $"Cannot fold {Describe(module, name)}: its state is {tensor.dtype} on {tensor.device}, " +
                        $"but {names.Conv} is {dtype} on {conv.weight.device}.", nameof(conv));
            }
        }
    }

    private static long? NormChannels(nn.Module<Tensor, Tensor> norm) => norm switch
    {
        NormBase batchOrInstance => batchOrInstance.num_features,
        GroupNorm { affine: true } gn => gn.weight.shape[0],
        _ => null,
    };

    private static void RequireEvaluationMode(nn.Module module, string description)
    {
        if (module.training)
            throw new InvalidOperationException(
                $"Cannot fold {description}: it is in training mode. Folding reproduces the evaluation-mode output from the " +
                "running statistics; call eval() on the network before folding.");
        foreach (var (child, submodule) in module.named_modules())
        {
            if (submodule.training)
                throw new InvalidOperationException(
                    $"Cannot fold {description}: its submodule '{child}' is in training mode. Folding reproduces the " +
                    "evaluation-mode output from the running statistics; call eval() on the network before folding.");
        }
    }

    /// <summary>Throws, after disposing <paramref name="folded"/>, when any of its values is not finite.</summary>
    private static void RequireFinite(nn.Module folded, string description)
    {
        using var scope = NewDisposeScope();
        foreach (var (key, tensor) in folded.state_dict())
        {
            if (!tensor.is_floating_point() || tensor.isfinite().all().item<bool>())
                continue;
            folded.Dispose();
            throw new InvalidOperationException(
                $"Cannot fold {description}: the folded '{key}' is not finite; the module's parameters or running " +
                "statistics hold NaN or infinite values.");
        }
    }

    private static string Describe(nn.Module module, string name) => $"{name} ({module.GetType().Name})";

    private static long GreatestCommonDivisor(long a, long b)
    {
        while (b != 0)
            (a, b) = (b, a % b);
        return a;
    }
}
