using System;
using System.Collections.Generic;
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
        var data = context.Attributes[0];
        var location = AttributeLocation(data);
        var diagnostics = new List<DiagnosticInfo>();
        CheckDeclaration(symbol, data, location, diagnostics);
        if (HasAttribute(symbol, AttributeNames.Block))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, location, symbol.Name, "a class cannot be both a [Block] and a [Network]"));

        // The stages that name the same block share one parse of it.
        var stageBlocks = new Dictionary<ITypeSymbol, BlockReference>(SymbolEqualityComparer.Default);
        var layers = ParseLayers(symbol, data, diagnostics, stageBlocks, cancellationToken);
        var defaults = NetworkDefaults;
        return new NetworkDeclaration(
            TypeRefOf(symbol),
            location,
            AttributeReader.Named(data, nameof(NetworkAttribute.Init), defaults.Init),
            AttributeReader.Named(data, nameof(NetworkAttribute.Input), defaults.Input) ?? "",
            AttributeReader.Named(data, nameof(NetworkAttribute.Classes), defaults.Classes),
            AttributeReader.Named(data, nameof(NetworkAttribute.CE), defaults.CE),
            AttributeReader.Named(data, nameof(NetworkAttribute.CEGroupSize), defaults.CEGroupSize),
            AttributeReader.Named(data, nameof(NetworkAttribute.StemCEGroupSize), defaults.StemCEGroupSize),
            AttributeReader.Named(data, nameof(NetworkAttribute.CEReduction), defaults.CEReduction),
            AttributeReader.Named(data, nameof(NetworkAttribute.CEBlocks), defaults.CEBlocks),
            AttributeReader.Named(data, nameof(NetworkAttribute.CEInOwnLayers), defaults.CEInOwnLayers),
            layers,
            MemberNames(symbol),
            diagnostics.ToEquatableArray());
    }

    /// <summary>The members the user declared (layer names must not collide with them).</summary>
    private static EquatableArray<string> MemberNames(INamedTypeSymbol symbol) =>
        symbol.MemberNames.Where(n => !n.StartsWith(".", System.StringComparison.Ordinal)).OrderBy(n => n, System.StringComparer.Ordinal).ToEquatableArray();

    private static BlockDeclaration ParseBlock(INamedTypeSymbol symbol, AttributeData data, CancellationToken cancellationToken)
    {
        var location = AttributeLocation(data);
        var diagnostics = new List<DiagnosticInfo>();
        CheckDeclaration(symbol, data, location, diagnostics);
        var layers = ParseLayers(symbol, data, diagnostics, stageBlocks: null, cancellationToken);
        var defaults = BlockDefaults;
        return new BlockDeclaration(TypeRefOf(symbol), location,
            AttributeReader.Named(data, nameof(BlockAttribute.Init), defaults.Init),
            AttributeReader.Named(data, nameof(BlockAttribute.Residual), defaults.Residual),
            layers, MemberNames(symbol), diagnostics.ToEquatableArray());
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
    /// <param name="stageBlocks">A network's: the blocks its stages name, parsed so far; null for a block (its stages are not resolved).</param>
    private static EquatableArray<LayerSpec> ParseLayers(INamedTypeSymbol symbol, AttributeData classAttribute, List<DiagnosticInfo> diagnostics, Dictionary<ITypeSymbol, BlockReference>? stageBlocks, CancellationToken cancellationToken)
    {
        var declaration = DeclarationOf(classAttribute);
        var found = new List<(int Order, AttributeData Data, Type Type, LayerKind Kind)>();
        int metadataOrder = 0;
        foreach (var data in symbol.GetAttributes())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (data.AttributeClass is not { } attributeClass || attributeClass.TypeKind == TypeKind.Error) continue;
            if (attributeClass.ContainingNamespace?.ToDisplayString() != AttributeNames.Namespace) continue;
            if (!AttributeNames.Layers.TryGetValue(attributeClass.Name, out var layer)) continue;

            var syntax = data.ApplicationSyntaxReference;
            if (syntax is null)
            {
                // From metadata: attributes keep their declaration order there.
                found.Add((metadataOrder++, data, layer.Type, layer.Kind));
                continue;
            }
            if (declaration is null || syntax.SyntaxTree != declaration.SyntaxTree || !declaration.Span.Contains(syntax.Span))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, LocationInfo.From(syntax.GetSyntax()), symbol.Name,
                    "its layer attributes must all be on the declaration that carries [Block] or [Network] (the order across partial declarations is not defined)"));
                continue;
            }
            found.Add((syntax.Span.Start, data, layer.Type, layer.Kind));
        }

        return found.OrderBy(f => f.Order)
            .Select(f => ParseLayer(f.Data, f.Type, f.Kind, stageBlocks, cancellationToken))
            .ToEquatableArray();
    }

    // The attributes' defaults, where users read them: the DSL's classes (compiled into the generator).
    private static readonly NetworkAttribute NetworkDefaults = new();
    private static readonly BlockAttribute BlockDefaults = new();
    private static readonly StageAttribute StageDefaults = new(typeof(object));

    private static LayerSpec ParseLayer(AttributeData data, Type type, LayerKind kind, Dictionary<ITypeSymbol, BlockReference>? stageBlocks, CancellationToken cancellationToken)
    {
        var spec = AttributeReader.Layer(data, type, kind, AttributeLocation(data));
        return kind == LayerKind.Stage ? spec with { Stage = ParseStage(data, stageBlocks, cancellationToken) } : spec;
    }

    private static StageSpec ParseStage(AttributeData data, Dictionary<ITypeSymbol, BlockReference>? blocks, CancellationToken cancellationToken)
    {
        var block = Reference(AttributeReader.TypeArgument(data, 0), blocks, cancellationToken);
        var first = AttributeReader.TypeArgument(data, nameof(StageAttribute.First)) is { } type ? Reference(type, blocks, cancellationToken) : null;
        return new StageSpec(
            AttributeReader.Named(data, nameof(StageAttribute.Blocks), StageDefaults.Blocks),
            AttributeReader.Named(data, nameof(StageAttribute.Out), StageDefaults.Out),
            AttributeReader.Named(data, nameof(StageAttribute.Stride), StageDefaults.Stride),
            block, first);
    }

    private static BlockReference Reference(ITypeSymbol? type, Dictionary<ITypeSymbol, BlockReference>? blocks, CancellationToken cancellationToken)
    {
        if (type is null) return new BlockReference("?", null);
        if (blocks is not null && blocks.TryGetValue(type, out var parsed)) return parsed;
        var display = type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat);
        if (blocks is null || type is not INamedTypeSymbol named) return new BlockReference(display, null);
        var blockAttribute = named.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == AttributeNames.Block);
        var reference = blockAttribute is null || HasAttribute(named, AttributeNames.Network)
            ? new BlockReference(display, null)
            : new BlockReference(display, ParseBlock(named, blockAttribute, cancellationToken));
        blocks[type] = reference;
        return reference;
    }
}
