using System;
using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Passes;

/// <summary>
/// A class whose generation failed on its layers: the generator still completes it with the members a
/// user's code calls (constructors, forward, Fold, Folded, the architecture), which throw, so that the
/// build reports the CEDSL errors and nothing that follows from a missing class.
/// </summary>
/// <param name="Type">The class.</param>
/// <param name="IsBlock">True for a block, false for a network.</param>
/// <param name="Classes">A network's declared classes (1 when invalid).</param>
/// <param name="Input">A network's declared input C, H, W (1 each when malformed).</param>
/// <param name="Defaults">The defaults of a block's placement parameters.</param>
internal sealed record FailedClass(TypeRef Type, bool IsBlock, int Classes, EquatableArray<long> Input, PlacementDefaults Defaults);

/// <summary>The second transform's output: the plan (null when the class has errors), the class to stub when it has, and the diagnostics.</summary>
internal sealed record ValidationResult(ClassPlan? Plan, FailedClass? Failed, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>
/// The second transform: a declaration through the passes (values, structure, CE placement, naming,
/// shapes, plan) to a plan and diagnostics. Every pass reports all it finds; the passes that need a
/// consistent class (shapes, plan) run only when the earlier ones found no error.
/// </summary>
internal static class Validator
{
    private static readonly Func<BlockDeclaration, BlockResult> NoStages = _ => throw new InvalidOperationException("a block has no stages");

    public static ValidationResult Validate(BlockDeclaration declaration) => Result(declaration, Run(declaration, NoStages, complete: true));

    public static ValidationResult Validate(NetworkDeclaration declaration)
    {
        // By type: the stages that name a block each hold an equal copy of its declaration.
        var blocks = new Dictionary<TypeRef, BlockResult>();
        BlockResult Block(BlockDeclaration block)
        {
            if (!blocks.TryGetValue(block.Type, out var result))
            {
                // The block's own generation reports its diagnostics and builds its plan; the network needs its signature and sizes.
                var run = Run(block, NoStages, complete: false);
                blocks[block.Type] = result = run.Errors ? new BlockResult(null, null, EquatableArray<SizeCheck>.Empty) : new BlockResult(run.Signature, run.Output, run.Checks);
            }
            return result;
        }
        return Result(declaration, Run(declaration, Block, complete: true));
    }

    /// <param name="Plan">The plan (a complete run), null with errors.</param>
    /// <param name="Signature">A block's signature (any run without errors).</param>
    private sealed record Outcome(ClassPlan? Plan, BlockSignature? Signature, Shape? Output, EquatableArray<SizeCheck> Checks, List<DiagnosticInfo> Diagnostics, bool DeclarationFailed)
    {
        public bool Errors => (Plan is null && Signature is null) || Diagnostics.Exists(d => d.IsError);
    }

    /// <param name="complete">Build the plan (members, forward, folded form); otherwise only what a network needs of a block.</param>
    private static Outcome Run(ClassDeclaration declaration, Func<BlockDeclaration, BlockResult> blocks, bool complete)
    {
        var diagnostics = new List<DiagnosticInfo>(declaration.Diagnostics);
        bool HasErrors() => diagnostics.Exists(d => d.IsError);
        Outcome Stop(bool declarationFailed = false) => new(null, null, null, EquatableArray<SizeCheck>.Empty, diagnostics, declarationFailed);
        if (HasErrors()) return Stop(declarationFailed: true);

        diagnostics.AddRange(Values.Check(declaration));
        var structure = Structure.Build(declaration);
        diagnostics.AddRange(structure.Diagnostics);
        var placement = CePlacement.Apply(declaration, structure.Steps);
        diagnostics.AddRange(placement.Diagnostics);
        var named = Naming.Assign(declaration, placement.Steps, structure.Shortcut);
        diagnostics.AddRange(named.Diagnostics);
        if (HasErrors()) return Stop();

        var (shapes, shapeDiagnostics) = Shapes.Infer(declaration, named, blocks);
        diagnostics.AddRange(shapeDiagnostics);
        if (shapes is null || HasErrors()) return Stop();

        var constants = new Dictionary<Parameter, long>();
        foreach (var check in shapes.Checks)
        {
            if (check.Run(constants) is { } diagnostic) diagnostics.Add(diagnostic);
        }
        if (HasErrors()) return Stop();

        if (!complete && declaration is BlockDeclaration block)
        {
            var (signature, signatureDiagnostics) = Planner.Signature(block, placement, named, shapes);
            diagnostics.AddRange(signatureDiagnostics);
            return new Outcome(null, signature, shapes.Output, shapes.Checks, diagnostics, false);
        }
        var (plan, planDiagnostics) = Planner.Build(declaration, placement, named, shapes);
        diagnostics.AddRange(planDiagnostics);
        return new Outcome(plan, plan?.Signature as BlockSignature, shapes.Output, shapes.Checks, diagnostics, false);
    }

    private static ValidationResult Result(ClassDeclaration declaration, Outcome outcome)
    {
        var diagnostics = outcome.Diagnostics.Distinct().ToEquatableArray();
        if (!outcome.Errors) return new ValidationResult(outcome.Plan, null, diagnostics);
        return new ValidationResult(null, outcome.DeclarationFailed ? null : Failed(declaration), diagnostics);
    }

    private static FailedClass Failed(ClassDeclaration declaration)
    {
        var defaults = Planner.PlacementDefaults();
        return declaration switch
        {
            NetworkDeclaration network => new FailedClass(network.Type, false, Math.Max(network.Classes, 1),
                (NetworkInput.Parse(network.Input) ?? new long[] { 1, 1, 1 }).ToEquatableArray(), defaults),
            _ => new FailedClass(declaration.Type, true, 1, EquatableArray<long>.Empty, defaults),
        };
    }
}
