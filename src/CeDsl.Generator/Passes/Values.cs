using System.Collections.Generic;
using System.Globalization;
using CeDsl.Generator.Model;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Passes;

/// <summary>
/// The first pass: every value a class's attributes carry, checked on its own (kernels, strides, group
/// sizes, probabilities, a network's input and classes), so that all of them are reported at once,
/// whatever else is wrong with the class.
/// </summary>
internal static class Values
{
    public static EquatableArray<DiagnosticInfo> Check(ClassDeclaration declaration)
    {
        var diagnostics = new List<DiagnosticInfo>();
        if (declaration is NetworkDeclaration network) CheckNetwork(network, diagnostics);
        foreach (var layer in declaration.Layers) CheckLayer(layer, declaration, diagnostics);
        return diagnostics.ToEquatableArray();
    }

    private static void CheckNetwork(NetworkDeclaration network, List<DiagnosticInfo> diagnostics)
    {
        if (NetworkInput.Parse(network.Input) is not { } input)
            diagnostics.Add(DiagnosticInfo.Create(D.MalformedInput, network.Location, network.Input));
        else if (NetworkInput.LooksLikeChannelsLast(input))
            diagnostics.Add(DiagnosticInfo.Create(D.InputChannelsLast, network.Location, network.Input, $"{input[2]}x{input[0]}x{input[1]}"));
        if (network.Classes <= 0)
            diagnostics.Add(DiagnosticInfo.Create(D.InvalidValue, network.Location, $"Classes of network '{network.Type.Name}' must be positive (got {network.Classes})"));
        if (network.CEGroupSize <= 0 || network.StemCEGroupSize <= 0 || network.CEReduction <= 0 || network.CEBlocks < 0)
            diagnostics.Add(DiagnosticInfo.Create(D.InvalidValue, network.Location, $"CEGroupSize, StemCEGroupSize and CEReduction of network '{network.Type.Name}' must be positive and CEBlocks not negative"));
        if (network.CEBlocks > 0 && network.Placement != Placement.Paper)
            diagnostics.Add(DiagnosticInfo.Create(D.OptionIgnored, network.Location, $"CEBlocks = {network.CEBlocks}", $"CEBlocks limits the blocks Placement.Paper puts CE in, but network '{network.Type.Name}' has CE = Placement.{network.Placement}"));
    }

    private static void CheckLayer(LayerSpec spec, ClassDeclaration declaration, List<DiagnosticInfo> diagnostics)
    {
        void Invalid(string message) => diagnostics.Add(DiagnosticInfo.Create(D.InvalidValue, spec.Location, message));
        static string Number(double value) => value.ToString(CultureInfo.InvariantCulture);
        var kind = spec.Kind;
        switch (kind)
        {
            case LayerKind.Conv:
            case LayerKind.SelectConv:
                var what = kind == LayerKind.SelectConv ? "SelectConv" : "Conv";
                if (spec.Kernel <= 0) Invalid($"Kernel of {what} must be positive (got {spec.Kernel})");
                if (spec.Stride == 0 || spec.Stride < From.Parameter) Invalid($"Stride of {what} must be positive or From.Parameter (got {spec.Stride})");
                if (spec.Padding < -1) Invalid($"Padding of {what} must not be negative (got {spec.Padding})");
                if (kind == LayerKind.Conv && spec.Groups <= 0) Invalid($"Groups of Conv must be positive (got {spec.Groups})");
                if (spec.Out < 0 || spec.Expand < 0 || spec.ExpandInput < 0 || spec.In < 0) Invalid($"Out, Expand, ExpandInput and In of {what} must not be negative");
                if ((spec.Out > 0 ? 1 : 0) + (spec.Expand > 0 ? 1 : 0) + (spec.ExpandInput > 0 ? 1 : 0) > 1) Invalid($"{what} takes at most one of Out, Expand and ExpandInput");
                if (spec.Depthwise && spec.Groups != 1) Invalid("a Depthwise Conv has one group per input channel; do not set Groups");
                if (kind == LayerKind.SelectConv)
                {
                    if (!(spec.Gamma >= 0 && spec.Gamma < 1)) Invalid($"Gamma of SelectConv must be in [0, 1) (got {Number(spec.Gamma)})");
                    if (spec.K < 0) Invalid($"K of SelectConv must not be negative (got {spec.K}; 0 prunes only)");
                    if (spec.NMax < 0) Invalid($"NMax of SelectConv must not be negative (got {spec.NMax}; 0 means no cap)");
                    if (!(spec.P >= 0 && spec.P < 1)) Invalid($"Dropout of SelectConv must be in [0, 1) (got {Number(spec.P)})");
                }
                if (declaration is NetworkDeclaration network)
                {
                    if (spec.Expand > 0)
                        diagnostics.Add(DiagnosticInfo.Create(D.InvalidStructure, spec.Location, "Expand multiplies a block's width; a network's own convolution states Out"));
                    if (spec.Stride == From.Parameter)
                        diagnostics.Add(DiagnosticInfo.Create(D.StrideParameterOutsideBlock, spec.Location, network.Type.Name));
                }
                break;

            case LayerKind.Norm:
                if (!(spec.Eps > 0)) Invalid($"Eps of Norm must be positive (got {Number(spec.Eps)})");
                if (!(spec.Momentum >= 0 && spec.Momentum <= 1)) Invalid($"Momentum of Norm must be in [0, 1] (got {Number(spec.Momentum)})");
                if (spec.Norm == Kind.GN && spec.Groups <= 0) Invalid($"Groups of Norm(Kind.GN) must be positive (got {spec.Groups})");
                break;

            case LayerKind.CE:
            case LayerKind.BD:
            case LayerKind.AII:
            case LayerKind.SE:
                if (kind is LayerKind.CE or LayerKind.BD && spec.GroupSize <= 0) Invalid($"GroupSize of {kind} must be positive (got {spec.GroupSize})");
                if (kind is not LayerKind.BD && spec.R <= 0) Invalid($"R of {kind} must be positive (got {spec.R})");
                if (kind is LayerKind.CE or LayerKind.BD && spec.Iterations <= 0) Invalid($"Iterations of {kind} must be positive (got {spec.Iterations})");
                if (declaration is NetworkDeclaration { Placement: Placement.None } none && kind != LayerKind.SE)
                    diagnostics.Add(DiagnosticInfo.Create(D.OptionIgnored, spec.Location, $"[{kind}]", $"network '{none.Type.Name}' has CE = Placement.None, which builds no CE, BD or AII layer"));
                break;

            case LayerKind.MaxPool:
            case LayerKind.AvgPool:
                if (spec.Kernel <= 0) Invalid($"Kernel of {kind} must be positive (got {spec.Kernel})");
                if (spec.Stride < 0) Invalid($"Stride of {kind} must be positive (got {spec.Stride})");
                if (spec.Padding < -1) Invalid($"Padding of {kind} must not be negative (got {spec.Padding})");
                else if (spec.Kernel > 0 && Pool.Padding(spec) > spec.Kernel / 2)
                    Invalid($"Padding of {kind} must be at most half the window (kernel {spec.Kernel}, padding {Pool.Padding(spec)})");
                break;

            case LayerKind.GlobalAvgPool:
                if (spec.Size <= 0) Invalid($"Size of GlobalAvgPool must be positive (got {spec.Size})");
                break;

            case LayerKind.Linear:
                if (spec.Out < 0) Invalid($"Out of Linear must be positive (got {spec.Out})");
                if (spec.InitStd < 0) Invalid($"InitStd of Linear must not be negative (got {Number(spec.InitStd)})");
                break;

            case LayerKind.Dropout:
                if (!(spec.P >= 0 && spec.P < 1)) Invalid($"P of Dropout must be in [0, 1) (got {Number(spec.P)})");
                break;

            case LayerKind.Shuffle:
                if (spec.Groups <= 0) Invalid($"Groups of Shuffle must be positive (got {spec.Groups})");
                break;

            case LayerKind.Stage when spec.Stage is { } stage && declaration is NetworkDeclaration:
                if (stage.Blocks <= 0) Invalid($"Blocks of stage {StageNumber(spec, declaration)} must be positive (got {stage.Blocks})");
                if (stage.Out <= 0) Invalid($"Out of stage {StageNumber(spec, declaration)} must be positive (got {stage.Out})");
                if (stage.Stride <= 0) Invalid($"Stride of stage {StageNumber(spec, declaration)} must be positive (got {stage.Stride})");
                break;
        }
    }

    private static int StageNumber(LayerSpec spec, ClassDeclaration declaration)
    {
        int number = 0;
        foreach (var layer in declaration.Layers)
        {
            if (layer.Kind == LayerKind.Stage) number++;
            if (ReferenceEquals(layer, spec)) break;
        }
        return number;
    }
}

/// <summary>The values of a pooling layer that its attribute leaves to the layer's rule.</summary>
internal static class Pool
{
    /// <summary>The stride: the window size unless given.</summary>
    public static int Stride(LayerSpec spec) => spec.Stride == 0 ? spec.Kernel : spec.Stride;

    /// <summary>The padding: (kernel - 1) / 2 unless given.</summary>
    public static int Padding(LayerSpec spec) => spec.Padding == -1 ? (spec.Kernel - 1) / 2 : spec.Padding;
}

/// <summary>A network's declared input "CxHxW".</summary>
internal static class NetworkInput
{
    /// <summary>The three positive sizes, or null when the text is not "CxHxW".</summary>
    public static long[]? Parse(string text)
    {
        var parts = (text ?? "").Split('x');
        if (parts.Length != 3) return null;
        var values = new long[3];
        for (int i = 0; i < 3; i++)
        {
            if (!long.TryParse(parts[i].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) || values[i] <= 0) return null;
        }
        return values;
    }

    /// <summary>"32x32x3": a square image's height and width first and a usual channel count (1, 3, 4) last.</summary>
    public static bool LooksLikeChannelsLast(long[] input) =>
        input[0] == input[1] && input[0] > 4 && input[2] is 1 or 3 or 4;
}
