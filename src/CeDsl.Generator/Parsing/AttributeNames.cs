using System;
using System.Collections.Generic;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Parsing;

/// <summary>The DSL's attribute classes (compiled into the generator from CeDsl.Runtime's Dsl folder) and the layers they declare.</summary>
internal static class AttributeNames
{
    public static readonly string Namespace = typeof(BlockAttribute).Namespace!;
    public static readonly string Block = typeof(BlockAttribute).FullName!;
    public static readonly string Network = typeof(NetworkAttribute).FullName!;

    /// <summary>Attribute class name (without namespace) to the attribute class and the layer it declares.</summary>
    public static readonly IReadOnlyDictionary<string, (Type Type, LayerKind Kind)> Layers = Index(
        (typeof(ConvAttribute), LayerKind.Conv),
        (typeof(SelectConvAttribute), LayerKind.SelectConv),
        (typeof(NormAttribute), LayerKind.Norm),
        (typeof(CEAttribute), LayerKind.CE),
        (typeof(BDAttribute), LayerKind.BD),
        (typeof(AIIAttribute), LayerKind.AII),
        (typeof(SEAttribute), LayerKind.SE),
        (typeof(ReLUAttribute), LayerKind.ReLU),
        (typeof(ReLU6Attribute), LayerKind.ReLU6),
        (typeof(MaxPoolAttribute), LayerKind.MaxPool),
        (typeof(AvgPoolAttribute), LayerKind.AvgPool),
        (typeof(GlobalAvgPoolAttribute), LayerKind.GlobalAvgPool),
        (typeof(FlattenAttribute), LayerKind.Flatten),
        (typeof(LinearAttribute), LayerKind.Linear),
        (typeof(DropoutAttribute), LayerKind.Dropout),
        (typeof(SplitAttribute), LayerKind.Split),
        (typeof(ConcatAttribute), LayerKind.Concat),
        (typeof(ShuffleAttribute), LayerKind.Shuffle),
        (typeof(AddAttribute), LayerKind.Add),
        (typeof(StemAttribute), LayerKind.Stem),
        (typeof(HeadAttribute), LayerKind.Head),
        (typeof(SeqAttribute), LayerKind.Seq),
        (typeof(BranchAttribute), LayerKind.Branch),
        (typeof(StageAttribute), LayerKind.Stage));

    private static Dictionary<string, (Type, LayerKind)> Index(params (Type Type, LayerKind Kind)[] entries)
    {
        var index = new Dictionary<string, (Type, LayerKind)>(StringComparer.Ordinal);
        foreach (var entry in entries) index[entry.Type.Name] = entry;
        return index;
    }
}
