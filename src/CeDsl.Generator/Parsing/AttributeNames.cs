using System.Collections.Generic;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Parsing;

/// <summary>The metadata names of the DSL's attributes (CeDsl.Runtime, folder Dsl).</summary>
internal static class AttributeNames
{
    public const string Namespace = "CeDsl";
    public const string Block = "CeDsl.BlockAttribute";
    public const string Network = "CeDsl.NetworkAttribute";

    /// <summary>Attribute class name (without namespace) to the layer it declares.</summary>
    public static readonly IReadOnlyDictionary<string, LayerKind> Layers = new Dictionary<string, LayerKind>
    {
        ["ConvAttribute"] = LayerKind.Conv,
        ["SelectConvAttribute"] = LayerKind.SelectConv,
        ["NormAttribute"] = LayerKind.Norm,
        ["CEAttribute"] = LayerKind.CE,
        ["BDAttribute"] = LayerKind.BD,
        ["AIIAttribute"] = LayerKind.AII,
        ["SEAttribute"] = LayerKind.SE,
        ["ReLUAttribute"] = LayerKind.ReLU,
        ["ReLU6Attribute"] = LayerKind.ReLU6,
        ["MaxPoolAttribute"] = LayerKind.MaxPool,
        ["AvgPoolAttribute"] = LayerKind.AvgPool,
        ["GlobalAvgPoolAttribute"] = LayerKind.GlobalAvgPool,
        ["FlattenAttribute"] = LayerKind.Flatten,
        ["LinearAttribute"] = LayerKind.Linear,
        ["DropoutAttribute"] = LayerKind.Dropout,
        ["SplitAttribute"] = LayerKind.Split,
        ["ConcatAttribute"] = LayerKind.Concat,
        ["ShuffleAttribute"] = LayerKind.Shuffle,
        ["AddAttribute"] = LayerKind.Add,
        ["StemAttribute"] = LayerKind.Stem,
        ["HeadAttribute"] = LayerKind.Head,
        ["SeqAttribute"] = LayerKind.Seq,
        ["BranchAttribute"] = LayerKind.Branch,
        ["StageAttribute"] = LayerKind.Stage,
    };
}
