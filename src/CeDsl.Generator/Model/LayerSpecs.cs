using System;

namespace CeDsl.Generator.Model;

/// <summary>
/// A DSL attribute instance as a <see cref="LayerSpec"/>. The parser reads the user's attributes this way, and
/// the passes make the layers the generator adds (the implicit head, a projection, the paper's CE) from new
/// attribute instances, so that every value they do not set is the attribute class's default.
/// </summary>
internal static class LayerSpecs
{
    public static LayerSpec From(Attribute attribute, LayerKind kind, LocationInfo? location)
    {
        var name = attribute switch
        {
            LayerAttribute layer => layer.Name,
            SectionAttribute section => section.Name,
            StageAttribute stage => stage.Name,
            _ => null,
        };
        var spec = new LayerSpec(kind, location, name);
        return attribute switch
        {
            ConvAttribute a => spec with
            {
                Kernel = a.Kernel, Stride = a.Stride, Padding = a.Padding, Groups = a.Groups, Depthwise = a.Depthwise,
                Out = a.Out, Expand = a.Expand, ExpandInput = a.ExpandInput, In = a.In, Bias = a.Bias,
            },
            SelectConvAttribute a => spec with
            {
                Kernel = a.Kernel, Stride = a.Stride, Padding = a.Padding, Out = a.Out, Expand = a.Expand, ExpandInput = a.ExpandInput,
                Gamma = a.Gamma, K = a.K, NMax = a.NMax, P = a.Dropout,
            },
            NormAttribute a => spec with { Norm = a.Kind, Groups = a.Groups, Eps = a.Eps, Momentum = a.Momentum },
            CEAttribute a => spec with { GroupSize = a.GroupSize, R = a.R, Iterations = a.Iterations },
            BDAttribute a => spec with { GroupSize = a.GroupSize, Iterations = a.Iterations },
            AIIAttribute a => spec with { R = a.R },
            SEAttribute a => spec with { R = a.R },
            MaxPoolAttribute a => spec with { Kernel = a.Kernel, Stride = a.Stride, Padding = a.Padding },
            AvgPoolAttribute a => spec with { Kernel = a.Kernel, Stride = a.Stride, Padding = a.Padding },
            GlobalAvgPoolAttribute a => spec with { Size = a.Size },
            LinearAttribute a => spec with { Out = a.Out, Bias = a.Bias, InitStd = a.InitStd },
            DropoutAttribute a => spec with { P = a.P },
            ShuffleAttribute a => spec with { Groups = a.Groups },
            _ => spec,
        };
    }

    /// <summary>A layer the generator adds, with the attribute's defaults for every value <paramref name="attribute"/> does not set.</summary>
    public static LayerSpec Implicit(Attribute attribute, LayerKind kind, LocationInfo? location) =>
        From(attribute, kind, location) with { Implicit = true };
}
