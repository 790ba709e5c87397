using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using CeDsl.Folding;
using CeDsl.Layers;
using CeDsl.Selective;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Analysis;

/// <summary>One row of a <see cref="NetworkSummary"/>: a layer, its output and its cost per image.</summary>
/// <param name="Name">The module's dotted name in the network (its state-dict prefix).</param>
/// <param name="Type">The module's type name.</param>
/// <param name="OutputShape">The output shape of one image: (C, H, W) or (features).</param>
/// <param name="Parameters">The parameters the module holds, its submodules included.</param>
/// <param name="MultiplyAccumulates">Multiply-accumulates for one image at evaluation time.</param>
/// <param name="ElementwiseOperations">For normalization layers and activations, one operation per output element; 0 otherwise.</param>
public sealed record LayerSummary(string Name, string Type, IReadOnlyList<long> OutputShape, long Parameters, long MultiplyAccumulates, long ElementwiseOperations);

/// <summary>
/// The layers of a network with output shapes, parameters and multiply-accumulates (MACs) per image,
/// like torchinfo's summary. MACs count what evaluation computes: convolutions
/// (H_out·W_out·C_out·C_in/groups·k_h·k_w), linear layers (in·out), the per-sample channel maps of
/// CE and BD (C·d per pixel, d the group size), the instance variance of CE and AII (C·H·W) and
/// their gates' and SE's linear layers: torchvision's convention (ResNet-50: 4.09 G). Published
/// figures differ in what else they count: <see cref="ElementwiseOperations"/> adds one operation
/// per output element of every normalization and activation, which gives the figures most FLOP
/// counters print for ResNets (ResNet-50: 4.11 G). Pooling, additions and element-wise products are
/// counted in neither.
/// </summary>
public sealed class NetworkSummary
{
    private NetworkSummary(IReadOnlyList<long> inputShape, IReadOnlyList<LayerSummary> layers, long parameters, long trainableParameters)
    {
        InputShape = inputShape;
        Layers = layers;
        Parameters = parameters;
        TrainableParameters = trainableParameters;
        MultiplyAccumulates = layers.Sum(l => l.MultiplyAccumulates);
        ElementwiseOperations = layers.Sum(l => l.ElementwiseOperations);
    }

    /// <summary>The input shape of one image (C, H, W) the summary was computed for.</summary>
    public IReadOnlyList<long> InputShape { get; }

    /// <summary>The layers in execution order: modules without submodules, and CE, BD, AII, SE and selective convolutions (pruned or not) as one layer each.</summary>
    public IReadOnlyList<LayerSummary> Layers { get; }

    /// <summary>All parameters of the network.</summary>
    public long Parameters { get; }

    /// <summary>The parameters that require gradients.</summary>
    public long TrainableParameters { get; }

    /// <summary>Multiply-accumulates per image, all layers.</summary>
    public long MultiplyAccumulates { get; }

    /// <summary>One operation per output element of every normalization layer and activation, per image.</summary>
    public long ElementwiseOperations { get; }

    /// <summary>The multiply-accumulates of the layers of the given types (e.g. <c>typeof(ChannelEquilibrium)</c>).</summary>
    public long MultiplyAccumulatesOf(params Type[] types) =>
        Layers.Where(l => types.Any(t => t.Name == l.Type)).Sum(l => l.MultiplyAccumulates);

    /// <summary>
    /// Runs one forward pass of two images of <paramref name="inputShape"/> (C, H, W) through
    /// <paramref name="network"/> and records every layer. The pass runs in training mode (CE, BD and
    /// AII refuse evaluation before their statistics are estimated) without gradients; every buffer
    /// (running statistics) and every module's mode are restored afterwards, so the network is left
    /// exactly as it was. The global random generator is not used.
    /// </summary>
    /// <exception cref="ArgumentException">The input shape is not (C, H, W) with positive sizes, or the network rejects it (the message says why).</exception>
    public static NetworkSummary Of(nn.Module<Tensor, Tensor> network, IReadOnlyList<long> inputShape)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (inputShape.Count != 3 || inputShape.Any(s => s <= 0))
            throw new ArgumentException($"The input shape must be (C, H, W) with positive sizes, got ({string.Join(", ", inputShape)}).", nameof(inputShape));

        var layers = new List<(string Name, nn.Module<Tensor, Tensor> Module)>();
        CollectLayers(network, "", layers);

        var reference = network.parameters().FirstOrDefault() ?? network.buffers().FirstOrDefault();
        var rows = new List<LayerSummary>();
        var hooks = new OutputHooks();
        var modes = network.modules().Prepend(network).Select(m => (Module: m, m.training)).ToList();
        var saved = network.named_buffers().Select(b => (Buffer: b.buffer, Copy: b.buffer.detach().clone())).ToList();
        try
        {
            foreach (var (name, module) in layers)
                hooks.Add(name, module, output =>
                {
                    rows.Add(Describe(name, module, output));
                    return null;
                });

            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var generator = new Generator(0);
            var input = randn(new[] { 2L }.Concat(inputShape).ToArray(), dtype: reference?.dtype ?? ScalarType.Float32,
                device: reference?.device, generator: generator);
            network.train();
            try
            {
                network.call(input);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or ExternalException)
            {
                throw new ArgumentException($"The network does not accept inputs of shape ({string.Join(", ", inputShape)}): {e.Message}", nameof(inputShape), e);
            }
        }
        finally
        {
            hooks.Dispose();
            using (no_grad())
            {
                foreach (var (buffer, copy) in saved)
                {
                    buffer.copy_(copy);
                    copy.Dispose();
                }
            }
            foreach (var (module, training) in modes) module.train(training);
        }

        var parameters = network.parameters().ToList();
        return new NetworkSummary(inputShape.ToArray(), rows,
            parameters.Sum(p => p.numel()), parameters.Where(p => p.requires_grad).Sum(p => p.numel()));
    }

    /// <summary>The summary as a text table with totals, like torchinfo's.</summary>
    public string ToTable()
    {
        var text = new StringBuilder();
        int nameWidth = Math.Max(20, Layers.Select(l => l.Name.Length).DefaultIfEmpty(0).Max() + 2);
        int typeWidth = Math.Max(12, Layers.Select(l => l.Type.Length).DefaultIfEmpty(0).Max() + 2);
        string Row(string name, string type, string shape, string parameters, string macs) =>
            name.PadRight(nameWidth) + type.PadRight(typeWidth) + shape.PadRight(16) + parameters.PadLeft(13) + macs.PadLeft(17);
        var header = Row("Layer", "Type", "Output shape", "Parameters", "MACs");
        text.AppendLine(header);
        text.AppendLine(new string('-', header.Length));
        foreach (var layer in Layers)
            text.AppendLine(Row(layer.Name, layer.Type, string.Join("x", layer.OutputShape), Count(layer.Parameters), Count(layer.MultiplyAccumulates)));
        text.AppendLine(new string('-', header.Length));
        text.AppendLine(CultureInfo.InvariantCulture, $"Input: {string.Join("x", InputShape)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"Parameters: {Count(Parameters)} (trainable {Count(TrainableParameters)})");
        text.AppendLine(CultureInfo.InvariantCulture, $"Multiply-accumulates per image: {Count(MultiplyAccumulates)} ({MultiplyAccumulates / 1e9:F3} G; {(MultiplyAccumulates + ElementwiseOperations) / 1e9:F3} G with one operation per norm and activation element)");
        return text.ToString();
    }

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Layers whose cost is counted as a whole: their submodules are not listed separately.</summary>
    private static bool IsCompositeLayer(nn.Module module) => module is ChannelEquilibrium or BatchDecorrelation
        or AdaptiveInstanceInverse or SqueezeExcitation or FoldedChannelEquilibrium or FoldedAdaptiveInstanceInverse or SelectiveConv2d
        or PrunedSelectiveConv2d;

    private static void CollectLayers(nn.Module module, string prefix, List<(string, nn.Module<Tensor, Tensor>)> layers)
    {
        foreach (var (name, child) in module.named_children())
        {
            var path = prefix.Length == 0 ? name : prefix + "." + name;
            bool leaf = IsCompositeLayer(child) || !child.children().Any();
            if (leaf && child is nn.Module<Tensor, Tensor> layer) layers.Add((path, layer));
            else if (!leaf) CollectLayers(child, path, layers);
        }
    }

    private static LayerSummary Describe(string name, nn.Module<Tensor, Tensor> module, Tensor output)
    {
        var perImage = output.shape.Skip(1).ToArray();
        long outputElements = perImage.Aggregate(1L, (a, b) => a * b);
        long parameters = module.parameters().Sum(p => p.numel());
        bool elementwise = module is BatchNorm1d or BatchNorm2d or GroupNorm or InstanceNorm2d or LayerNorm or ReLU or ReLU6;
        return new LayerSummary(name, module.GetType().Name, perImage, parameters, CountMultiplyAccumulates(module, outputElements, perImage),
            elementwise ? outputElements : 0);
    }

    private static long CountMultiplyAccumulates(nn.Module<Tensor, Tensor> module, long outputElements, long[] outputShape)
    {
        long pixels = outputShape.Length == 3 ? outputShape[1] * outputShape[2] : 1;
        long channels = outputShape.Length > 0 ? outputShape[0] : 0;
        long GateWeights(nn.Module gate) => gate.modules().OfType<Linear>().Sum(l => l.weight!.numel());
        switch (module)
        {
            case Conv2d conv:
                // Each output element: C_in/groups * kh * kw products (the weight's per-output-channel size).
                return outputElements * (conv.weight!.numel() / conv.weight.shape[0]);
            case Linear linear:
                return outputElements * linear.weight!.shape[1];
            case ChannelEquilibrium ce:
                return channels * ce.GroupSize * pixels + channels * pixels + GateWeights(ce);
            case FoldedChannelEquilibrium ce:
                return channels * ce.GroupSize * pixels + channels * pixels + GateWeights(ce);
            case BatchDecorrelation bd:
                return channels * bd.GroupSize * pixels;
            case AdaptiveInstanceInverse or FoldedAdaptiveInstanceInverse:
                return channels * pixels + GateWeights(module);
            case SqueezeExcitation se:
                return GateWeights(se);
            case SelectiveConv2d selective:
                // Closed input channels are zeroed by the gate and need not be read (pruning-only export).
                return outputElements * selective.OpenChannelCount * selective.KernelSize * selective.KernelSize;
            case PrunedSelectiveConv2d pruned:
                return outputElements * pruned.KeptChannels * pruned.KernelSize * pruned.KernelSize;
            default:
                return 0;
        }
    }
}
