using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using CeDsl.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace CeDsl.Generator.Parsing;

/// <summary>
/// The first transform: reads a [Block] or [Network] class and its attributes (in source order)
/// into equatable declarations. Nothing from Roslyn's object model leaves this class.
/// </summary>
internal static class DeclarationParser
{
    public static BlockDeclaration? ParseBlock(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol symbol) return null;
        // A class marked both [Block] and [Network] is reported once, by the network.
        if (HasAttribute(symbol, AttributeNames.Network)) return null;
        return ParseBlock(symbol, context.Attributes[0], cancellationToken);
    }

    public static NetworkDeclaration? ParseNetwork(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol symbol) return null;
        var attribute = context.Attributes[0];
        var location = AttributeLocation(attribute);
        var diagnostics = new List<DiagnosticInfo>();
        CheckDeclaration(symbol, attribute, location, diagnostics);
        if (HasAttribute(symbol, AttributeNames.Block))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, location, symbol.Name, "a class cannot be both a [Block] and a [Network]"));

        var layers = ParseLayers(symbol, attribute, diagnostics, resolveStages: true, cancellationToken);
        return new NetworkDeclaration(
            TypeRefOf(symbol),
            location,
            Named(attribute, "Input", "") ?? "",
            Named(attribute, "Classes", 0),
            (PlacementKind)Named(attribute, "CE", 0),
            Named(attribute, "CEGroupSize", 16),
            Named(attribute, "StemCEGroupSize", 64),
            Named(attribute, "CEReduction", 4),
            Named(attribute, "CEBlocks", 0),
            Named(attribute, "CEInOwnLayers", true),
            (InitKind)Named(attribute, "Init", 0),
            layers,
            MemberNames(symbol),
            diagnostics.ToEquatableArray());
    }

    /// <summary>The members the user declared (layer names must not collide with them).</summary>
    private static EquatableArray<string> MemberNames(INamedTypeSymbol symbol) =>
        symbol.MemberNames.Where(n => !n.StartsWith(".", System.StringComparison.Ordinal)).OrderBy(n => n, System.StringComparer.Ordinal).ToEquatableArray();

    private static BlockDeclaration ParseBlock(INamedTypeSymbol symbol, AttributeData attribute, CancellationToken cancellationToken)
    {
        var location = AttributeLocation(attribute);
        var diagnostics = new List<DiagnosticInfo>();
        CheckDeclaration(symbol, attribute, location, diagnostics);
        var layers = ParseLayers(symbol, attribute, diagnostics, resolveStages: false, cancellationToken);
        return new BlockDeclaration(
            TypeRefOf(symbol),
            location,
            (ShortcutKind)Named(attribute, "Residual", 0),
            (InitKind)Named(attribute, "Init", 0),
            layers,
            MemberNames(symbol),
            diagnostics.ToEquatableArray());
    }

    private static TypeRef TypeRefOf(INamedTypeSymbol symbol) =>
        new(symbol.ContainingNamespace is { IsGlobalNamespace: false } ns ? ns.ToDisplayString() : "", symbol.Name);

    private static void CheckDeclaration(INamedTypeSymbol symbol, AttributeData attribute, LocationInfo? location, List<DiagnosticInfo> diagnostics)
    {
        var declaration = DeclarationOf(attribute);
        if (declaration is not null && !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotPartial, location, symbol.Name));
        if (symbol.ContainingType is not null)
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, location, symbol.Name, "nested types are not supported; declare it directly in a namespace"));
        if (symbol.TypeParameters.Length > 0)
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, location, symbol.Name, "generic types are not supported"));
        if (symbol.IsStatic || symbol.IsAbstract)
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, location, symbol.Name, "the class must be neither static nor abstract"));
        if (symbol.BaseType is { SpecialType: not SpecialType.System_Object } baseType && !IsTensorModule(baseType))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, location, symbol.Name, $"the generated part derives from Module<Tensor, Tensor>, so the class cannot derive from '{baseType.ToDisplayString()}'"));
    }

    private static bool IsTensorModule(INamedTypeSymbol type) =>
        type.Name == "Module" && type.TypeArguments.Length == 2
        && type.ContainingNamespace.ToDisplayString() == "TorchSharp"
        && type.TypeArguments.All(t => t.Name == "Tensor");

    private static bool HasAttribute(INamedTypeSymbol symbol, string metadataName) =>
        symbol.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == metadataName);

    private static TypeDeclarationSyntax? DeclarationOf(AttributeData attribute) =>
        attribute.ApplicationSyntaxReference?.GetSyntax().FirstAncestorOrSelf<TypeDeclarationSyntax>();

    private static LocationInfo? AttributeLocation(AttributeData attribute) =>
        LocationInfo.From(attribute.ApplicationSyntaxReference?.GetSyntax());

    /// <summary>
    /// The DSL attributes of the declaration that carries <paramref name="classAttribute"/>, in
    /// source order. Roslyn does not promise source order across partial declarations, so layer
    /// attributes on any other declaration of the class are diagnosed.
    /// </summary>
    private static EquatableArray<LayerSpec> ParseLayers(INamedTypeSymbol symbol, AttributeData classAttribute, List<DiagnosticInfo> diagnostics, bool resolveStages, CancellationToken cancellationToken)
    {
        var declaration = DeclarationOf(classAttribute);
        var found = new List<(int Order, AttributeData Data, LayerKind Kind)>();
        int metadataOrder = 0;
        foreach (var data in symbol.GetAttributes())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (data.AttributeClass is not { } attributeClass || attributeClass.TypeKind == TypeKind.Error) continue;
            if (attributeClass.ContainingNamespace?.ToDisplayString() != AttributeNames.Namespace) continue;
            if (!AttributeNames.Layers.TryGetValue(attributeClass.Name, out var kind)) continue;

            var syntax = data.ApplicationSyntaxReference;
            if (syntax is null)
            {
                // From metadata: attributes keep their declaration order there.
                found.Add((metadataOrder++, data, kind));
                continue;
            }
            if (declaration is null || syntax.SyntaxTree != declaration.SyntaxTree || !declaration.Span.Contains(syntax.Span))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, LocationInfo.From(syntax.GetSyntax()), symbol.Name,
                    "its layer attributes must all be on the declaration that carries [Block] or [Network] (the order across partial declarations is not defined)"));
                continue;
            }
            found.Add((syntax.Span.Start, data, kind));
        }

        return found.OrderBy(f => f.Order)
            .Select(f => ParseLayer(f.Data, f.Kind, resolveStages, cancellationToken))
            .ToEquatableArray();
    }

    private static LayerSpec ParseLayer(AttributeData data, LayerKind kind, bool resolveStages, CancellationToken cancellationToken)
    {
        var location = AttributeLocation(data);
        var name = Named<string?>(data, "Name", null);
        var positional = data.ConstructorArguments;
        var spec = new LayerSpec(kind, location, name);
        switch (kind)
        {
            case LayerKind.Conv:
                return spec with
                {
                    Kernel = Positional(positional, 0, 0),
                    Stride = Named(data, "Stride", 1),
                    Padding = Named(data, "Padding", -1),
                    Groups = Named(data, "Groups", 1),
                    Depthwise = Named(data, "Depthwise", false),
                    Out = Named(data, "Out", 0),
                    Expand = Named(data, "Expand", 0),
                    ExpandInput = Named(data, "ExpandInput", 0),
                    In = Named(data, "In", 0),
                    Bias = Named(data, "Bias", false),
                };
            case LayerKind.SelectConv:
                return spec with
                {
                    Kernel = Positional(positional, 0, 0),
                    Stride = Named(data, "Stride", 1),
                    Padding = Named(data, "Padding", -1),
                    Out = Named(data, "Out", 0),
                    Expand = Named(data, "Expand", 0),
                    ExpandInput = Named(data, "ExpandInput", 0),
                    Gamma = Named(data, "Gamma", 0.001),
                    K = Named(data, "K", 3),
                    NMax = Named(data, "NMax", 0),
                    P = Named(data, "Dropout", 0.0),
                };
            case LayerKind.Norm:
                return spec with
                {
                    Norm = (NormKind)Positional(positional, 0, 0),
                    Groups = Named(data, "Groups", 32),
                    Eps = Named(data, "Eps", 1e-5),
                    Momentum = Named(data, "Momentum", 0.1),
                };
            case LayerKind.CE:
                return spec with { GroupSize = Named(data, "GroupSize", 16), R = Named(data, "R", 4), Iterations = Named(data, "Iterations", 3) };
            case LayerKind.BD:
                return spec with { GroupSize = Named(data, "GroupSize", 16), Iterations = Named(data, "Iterations", 3) };
            case LayerKind.AII:
                return spec with { R = Named(data, "R", 4) };
            case LayerKind.SE:
                return spec with { R = Named(data, "R", 16) };
            case LayerKind.MaxPool:
            case LayerKind.AvgPool:
                return spec with { Kernel = Positional(positional, 0, 0), Stride = Named(data, "Stride", 0), Padding = Named(data, "Padding", -1) };
            case LayerKind.GlobalAvgPool:
                return spec with { Size = Named(data, "Size", 1) };
            case LayerKind.Linear:
                return spec with { Out = Named(data, "Out", Positional(positional, 0, 0)), Bias = Named(data, "Bias", true), InitStd = Named(data, "InitStd", 0.0) };
            case LayerKind.Dropout:
                return spec with { P = Named(data, "P", Positional(positional, 0, 0.5)) };
            case LayerKind.Shuffle:
                return spec with { Groups = Named(data, "Groups", Positional(positional, 0, 2)) };
            case LayerKind.Seq:
            case LayerKind.Branch:
                return spec with { Name = Named(data, "Name", Positional<string?>(positional, 0, null)) };
            case LayerKind.Stage:
                return spec with { Stage = ParseStage(data, resolveStages, cancellationToken) };
            default:
                return spec;
        }
    }

    private static StageSpec ParseStage(AttributeData data, bool resolve, CancellationToken cancellationToken)
    {
        var block = Reference(Positional<ITypeSymbol?>(data.ConstructorArguments, 0, null), resolve, cancellationToken);
        var firstType = data.NamedArguments.FirstOrDefault(a => a.Key == "First").Value;
        var first = firstType.Value is ITypeSymbol t ? Reference(t, resolve, cancellationToken) : null;
        return new StageSpec(Named(data, "Blocks", 1), Named(data, "Out", 0), Named(data, "Stride", 1), block, first);
    }

    private static BlockReference Reference(ITypeSymbol? type, bool resolve, CancellationToken cancellationToken)
    {
        if (type is null) return new BlockReference("?", "?", null);
        var display = type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat);
        var global = type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat);
        if (!resolve || type is not INamedTypeSymbol named) return new BlockReference(display, global, null);
        var blockAttribute = named.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == AttributeNames.Block);
        if (blockAttribute is null || HasAttribute(named, AttributeNames.Network)) return new BlockReference(display, global, null);
        return new BlockReference(display, global, ParseBlock(named, blockAttribute, cancellationToken));
    }

    private static T Positional<T>(ImmutableArray<TypedConstant> arguments, int index, T fallback) =>
        arguments.Length > index && arguments[index].Kind != TypedConstantKind.Error && arguments[index].Value is T value ? value : fallback;

    private static T Named<T>(AttributeData data, string name, T fallback)
    {
        foreach (var argument in data.NamedArguments)
        {
            if (argument.Key == name && argument.Value.Kind != TypedConstantKind.Error && argument.Value.Value is T value) return value;
        }
        return fallback;
    }
}
