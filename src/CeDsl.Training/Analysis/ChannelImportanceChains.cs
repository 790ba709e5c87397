using System.Globalization;
using System.Text;
using CeDsl.Selective;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Analysis;

/// <summary>The channel importance of one BN -&gt; ReLU -&gt; conv chain (or selective convolution).</summary>
/// <param name="Normalization">The BatchNorm2d's dotted name.</param>
/// <param name="Convolution">The convolution's dotted name.</param>
/// <param name="Report">The importances (the L2 norm of each normalized-ECDM column) and how evenly they are spread.</param>
public sealed record ChannelImportanceChain(string Normalization, string Convolution, ChannelImportanceReport Report);

/// <summary>
/// The selective-convolution paper's channel importance (the expected channel damage matrix,
/// <see cref="ChannelImportance"/>) for every BN -&gt; ReLU -&gt; conv chain of any network, so that
/// networks can be compared by how evenly their channels matter: a Gini coefficient near 0 means
/// every channel matters about as much, near 1 that a few carry the layer.
/// </summary>
public static class ChannelImportanceChains
{
    /// <summary>
    /// Finds the chains by one forward pass of two random images of <paramref name="inputShape"/> (C, H, W)
    /// in evaluation mode without gradients: a BatchNorm2d whose output goes straight into a ReLU whose
    /// output goes straight into a Conv2d (the same tensor, as in generated and hand-written modules),
    /// and every <see cref="SelectiveConv2d"/> (its own BN, ReLU and convolution). A BN followed by CE
    /// or another block is not such a chain.
    /// </summary>
    /// <exception cref="InvalidOperationException">The network is in training mode (the ECDM reads the trained BN).</exception>
    public static IReadOnlyList<ChannelImportanceChain> Analyze(nn.Module<Tensor, Tensor> network, IReadOnlyList<long> inputShape)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network.training)
            throw new InvalidOperationException("Channel importance reads a trained network: call eval() first.");

        var calls = new List<(string Name, nn.Module Module, IntPtr Input, IntPtr Output)>();
        using (var hooks = new OutputHooks())
        {
            foreach (var (name, module) in network.named_modules())
            {
                if (module is BatchNorm2d or ReLU or Conv2d && module is nn.Module<Tensor, Tensor> layer)
                    hooks.Add(name, layer, (input, output) =>
                    {
                        calls.Add((name, layer, input.Handle, output.Handle));
                        return null;
                    });
            }

            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var reference = network.parameters().First();
            var input = randn([2, .. inputShape], dtype: reference.dtype, device: reference.device, generator: new Generator(0));
            network.call(input);
        }

        var chains = new List<ChannelImportanceChain>();
        for (int i = 0; i + 2 < calls.Count; i++)
        {
            if (calls[i].Module is BatchNorm2d norm && calls[i + 1].Module is ReLU && calls[i + 2].Module is Conv2d conv
                && calls[i + 1].Input == calls[i].Output && calls[i + 2].Input == calls[i + 1].Output
                && !IsInsideSelective(network, calls[i].Name))
            {
                chains.Add(new ChannelImportanceChain(calls[i].Name, calls[i + 2].Name, ChannelImportance.Analyze(norm, conv)));
            }
        }
        foreach (var (name, module) in network.named_modules())
        {
            if (module is SelectiveConv2d selective)
            {
                using var scope = NewDisposeScope();
                double[] values = ChannelImportance.ToDoubles(ChannelImportance.ColumnImportance(selective.NormalizedEcdm()));
                var open = selective.OpenMask();
                var kept = values.Where((_, c) => open[c]).ToArray();
                chains.Add(new ChannelImportanceChain(name + ".norm", name + ".conv",
                    new ChannelImportanceReport(values, ChannelImportance.Gini(kept), ChannelImportance.NormalizedEntropy(kept))));
            }
        }
        return chains;
    }

    private static bool IsInsideSelective(nn.Module network, string name) =>
        network.named_modules().Any(m => m.module is SelectiveConv2d && name.StartsWith(m.name + ".", StringComparison.Ordinal));

    /// <summary>
    /// The chains as CSV: normalization, convolution, channels, Gini, normalized entropy, and an
    /// "(overall)" row with the means.
    /// </summary>
    public static string ToCsv(string model, IReadOnlyList<ChannelImportanceChain> chains)
    {
        var text = new StringBuilder("model,normalization,convolution,channels,gini,normalized_entropy\n");
        foreach (var chain in chains)
            text.Append(CultureInfo.InvariantCulture, $"{model},{chain.Normalization},{chain.Convolution},{chain.Report.Importance.Count},{chain.Report.Gini:R},{chain.Report.NormalizedEntropy:R}\n");
        if (chains.Count > 0)
            text.Append(CultureInfo.InvariantCulture,
                $"{model},(overall),,{chains.Sum(c => c.Report.Importance.Count)},{chains.Average(c => c.Report.Gini):R},{chains.Average(c => c.Report.NormalizedEntropy):R}\n");
        return text.ToString();
    }
}
