using System;
using System.Threading;
using CeDsl.Generator.Emit;
using CeDsl.Generator.Model;
using CeDsl.Generator.Parsing;
using CeDsl.Generator.Passes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace CeDsl.Generator;

/// <summary>
/// Completes [Block] and [Network] classes into TorchSharp modules. Pipeline per class:
/// attribute -> declaration (parse) -> plan + diagnostics (validate: the passes of <see cref="Validator"/>)
/// -> source (emit); the diagnostics have their own output so that the source stays cached when only they change.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class CeDslGenerator : IIncrementalGenerator
{
    private readonly Action<string>? beforeStage;

    /// <summary>Creates the generator.</summary>
    public CeDslGenerator() { }

    /// <summary>For tests: <paramref name="beforeStage"/> runs before each stage ("parse", "validate", "emit") and may throw.</summary>
    internal CeDslGenerator(Action<string> beforeStage) => this.beforeStage = beforeStage;

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var blocks = context.SyntaxProvider
            .ForAttributeWithMetadataName(AttributeNames.Block, static (node, _) => node is ClassDeclarationSyntax, ParseBlock)
            .WithTrackingName(TrackingNames.BlockDeclarations);
        var blockResults = blocks
            .Select((parsed, _) => Validate(parsed, Validator.Validate))
            .WithTrackingName(TrackingNames.BlockResults);
        Register(context, blockResults, TrackingNames.BlockPlans, TrackingNames.BlockDiagnostics);

        var networks = context.SyntaxProvider
            .ForAttributeWithMetadataName(AttributeNames.Network, static (node, _) => node is ClassDeclarationSyntax, ParseNetwork)
            .WithTrackingName(TrackingNames.NetworkDeclarations);
        var networkResults = networks
            .Select((parsed, _) => Validate(parsed, Validator.Validate))
            .WithTrackingName(TrackingNames.NetworkResults);
        Register(context, networkResults, TrackingNames.NetworkPlans, TrackingNames.NetworkDiagnostics);
    }

    private void Register(IncrementalGeneratorInitializationContext context, IncrementalValuesProvider<ValidationResult> results, string plansName, string diagnosticsName)
    {
        var plans = results.Select(static (r, _) => new ClassOutput(r.Plan, r.Failed)).WithTrackingName(plansName);
        var diagnostics = results.Select(static (r, _) => r.Diagnostics).WithTrackingName(diagnosticsName);
        context.RegisterSourceOutput(plans, Emit);
        context.RegisterSourceOutput(diagnostics, static (output, list) =>
        {
            foreach (var diagnostic in list) output.ReportDiagnostic(diagnostic.ToDiagnostic());
        });
    }

    private Parsed<BlockDeclaration> ParseBlock(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken) =>
        Parse(context, cancellationToken, DeclarationParser.ParseBlock);

    private Parsed<NetworkDeclaration> ParseNetwork(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken) =>
        Parse(context, cancellationToken, DeclarationParser.ParseNetwork);

    private Parsed<T> Parse<T>(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken, Func<GeneratorAttributeSyntaxContext, CancellationToken, T?> parse)
        where T : class
    {
        var name = context.TargetSymbol.Name;
        var location = LocationInfo.From(context.Attributes[0].ApplicationSyntaxReference?.GetSyntax() ?? context.TargetNode);
        try
        {
            beforeStage?.Invoke("parse");
            return new Parsed<T>(name, location, parse(context, cancellationToken), null);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            return new Parsed<T>(name, location, null, Internal(name, location, exception));
        }
    }

    private ValidationResult Validate<T>(Parsed<T> parsed, Func<T, ValidationResult> validate) where T : class
    {
        if (parsed.Failure is not null) return new ValidationResult(null, null, new EquatableArray<DiagnosticInfo>(new[] { parsed.Failure }));
        if (parsed.Declaration is null) return new ValidationResult(null, null, EquatableArray<DiagnosticInfo>.Empty);
        try
        {
            beforeStage?.Invoke("validate");
            return validate(parsed.Declaration);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            return new ValidationResult(null, null, new EquatableArray<DiagnosticInfo>(new[] { Internal(parsed.Name, parsed.Location, exception) }));
        }
    }

    private void Emit(SourceProductionContext output, ClassOutput generated)
    {
        var type = generated.Plan?.Type ?? generated.Failed?.Type;
        if (type is null) return;
        string source;
        try
        {
            beforeStage?.Invoke("emit");
            source = generated.Plan is { } plan ? ClassEmitter.Emit(plan) : FailedClassEmitter.Emit(generated.Failed!);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            output.ReportDiagnostic(Internal(type.Name, null, exception).ToDiagnostic());
            return;
        }
        output.AddSource(ClassEmitter.HintName(type), source);
    }

    private static DiagnosticInfo Internal(string name, LocationInfo? location, Exception exception) =>
        DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, location, name, exception.GetType().Name, exception.Message);
}

/// <summary>What the emitter writes for a class: its plan, or the members of a class whose generation failed.</summary>
internal sealed record ClassOutput(ClassPlan? Plan, FailedClass? Failed);

/// <summary>The first transform's output: the declaration, or why parsing failed. The declaration is null for classes skipped on purpose.</summary>
internal sealed record Parsed<T>(string Name, LocationInfo? Location, T? Declaration, DiagnosticInfo? Failure) where T : class;

/// <summary>The names of the tracked pipeline steps (for the incremental tests).</summary>
internal static class TrackingNames
{
    public const string BlockDeclarations = "CeDsl.BlockDeclarations";
    public const string BlockResults = "CeDsl.BlockResults";
    public const string BlockPlans = "CeDsl.BlockPlans";
    public const string BlockDiagnostics = "CeDsl.BlockDiagnostics";
    public const string NetworkDeclarations = "CeDsl.NetworkDeclarations";
    public const string NetworkResults = "CeDsl.NetworkResults";
    public const string NetworkPlans = "CeDsl.NetworkPlans";
    public const string NetworkDiagnostics = "CeDsl.NetworkDiagnostics";
}
