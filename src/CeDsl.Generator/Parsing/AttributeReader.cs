using System;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Linq;
using CeDsl.Generator.Model;
using Microsoft.CodeAnalysis;

namespace CeDsl.Generator.Parsing;

/// <summary>
/// Reads attribute applications: every value written, and for every other value the default its DSL
/// attribute class declares (read from an instance of the class, made once per class). Arguments the compiler
/// rejects keep the default.
/// </summary>
internal static class AttributeReader
{
    private static readonly ConcurrentDictionary<LayerKind, LayerSpec> Defaults = new();

    /// <summary>The layer an attribute application declares.</summary>
    public static LayerSpec Layer(AttributeData data, Type type, LayerKind kind, LocationInfo? location)
    {
        if (!Defaults.TryGetValue(kind, out var defaults))
            defaults = Defaults.GetOrAdd(kind, LayerSpecs.From(DefaultInstance(type), kind, null));
        var spec = defaults with { Location = location };
        if (data.AttributeConstructor is { } constructor)
        {
            var positional = data.ConstructorArguments;
            for (int i = 0; i < positional.Length && i < constructor.Parameters.Length; i++)
                spec = Set(spec, constructor.Parameters[i].Name, positional[i]);
        }
        foreach (var argument in data.NamedArguments) spec = Set(spec, argument.Key, argument.Value);
        return spec;
    }

    /// <summary>An instance with every default (zero for a required kernel, null for a required block type).</summary>
    private static Attribute DefaultInstance(Type type)
    {
        var constructor = type.GetConstructors().OrderBy(c => c.GetParameters().Length).First();
        var arguments = constructor.GetParameters()
            .Select(p => p.HasDefaultValue ? p.DefaultValue : p.ParameterType.IsValueType ? Activator.CreateInstance(p.ParameterType) : null)
            .ToArray();
        return (Attribute)constructor.Invoke(arguments);
    }

    private static LayerSpec Set(LayerSpec spec, string name, TypedConstant value)
    {
        if (value.Kind is TypedConstantKind.Error or TypedConstantKind.Array || value.Value is not { } v) return spec;
        switch (name)
        {
            case "kernel": case nameof(ConvAttribute.Kernel): return spec with { Kernel = (int)v };
            case nameof(ConvAttribute.Stride): return spec with { Stride = (int)v };
            case nameof(ConvAttribute.Padding): return spec with { Padding = (int)v };
            case "groups": case nameof(ConvAttribute.Groups): return spec with { Groups = (int)v };
            case nameof(ConvAttribute.Depthwise): return spec with { Depthwise = (bool)v };
            case "out": case nameof(ConvAttribute.Out): return spec with { Out = (int)v };
            case nameof(ConvAttribute.Expand): return spec with { Expand = (int)v };
            case nameof(ConvAttribute.ExpandInput): return spec with { ExpandInput = (int)v };
            case nameof(ConvAttribute.In): return spec with { In = (int)v };
            case nameof(ConvAttribute.Bias): return spec with { Bias = (bool)v };
            case "kind": return spec with { Norm = (Kind)(int)v };
            case nameof(NormAttribute.Eps): return spec with { Eps = (double)v };
            case nameof(NormAttribute.Momentum): return spec with { Momentum = (double)v };
            case nameof(CEAttribute.GroupSize): return spec with { GroupSize = (int)v };
            case nameof(CEAttribute.R): return spec with { R = (int)v };
            case nameof(CEAttribute.Iterations): return spec with { Iterations = (int)v };
            case "p": case nameof(DropoutAttribute.P): case nameof(SelectConvAttribute.Dropout): return spec with { P = (double)v };
            case nameof(LinearAttribute.InitStd): return spec with { InitStd = (double)v };
            case nameof(GlobalAvgPoolAttribute.Size): return spec with { Size = (int)v };
            case nameof(SelectConvAttribute.Gamma): return spec with { Gamma = (double)v };
            case nameof(SelectConvAttribute.K): return spec with { K = (int)v };
            case nameof(SelectConvAttribute.NMax): return spec with { NMax = (int)v };
            case "name": case nameof(LayerAttribute.Name): return spec with { Name = (string)v };
            default: return spec; // a stage's values: ParseStage; an unknown property: a newer DSL than this generator
        }
    }

    /// <summary>The named argument <paramref name="name"/>, or <paramref name="fallback"/> (the attribute's default).</summary>
    public static T Named<T>(AttributeData data, string name, T fallback)
    {
        foreach (var argument in data.NamedArguments)
        {
            if (argument.Key == name && argument.Value.Kind is not TypedConstantKind.Error && argument.Value.Value is { } value)
                return typeof(T).IsEnum ? (T)Enum.ToObject(typeof(T), value) : value is T typed ? typed : fallback;
        }
        return fallback;
    }

    /// <summary>The symbol a <see cref="Type"/>-valued argument names: positional <paramref name="index"/>.</summary>
    public static ITypeSymbol? TypeArgument(AttributeData data, int index) => Symbol(data.ConstructorArguments, index);

    /// <summary>The symbol a <see cref="Type"/>-valued named argument names.</summary>
    public static ITypeSymbol? TypeArgument(AttributeData data, string name)
    {
        foreach (var argument in data.NamedArguments)
        {
            if (argument.Key == name) return argument.Value.Value as ITypeSymbol;
        }
        return null;
    }

    private static ITypeSymbol? Symbol(ImmutableArray<TypedConstant> arguments, int index) =>
        arguments.Length > index && arguments[index].Kind == TypedConstantKind.Type ? arguments[index].Value as ITypeSymbol : null;
}
