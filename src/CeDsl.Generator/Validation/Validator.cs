using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Validation;

/// <summary>The validated model of a class: its plan (null when it has errors) and its diagnostics.</summary>
internal sealed record ValidationResult(ClassPlan? Plan, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>The second transform: declarations to plans and diagnostics.</summary>
internal static class Validator
{
    public static ValidationResult Validate(BlockDeclaration declaration)
    {
        if (declaration.Diagnostics.Any(d => d.IsError)) return new ValidationResult(null, declaration.Diagnostics);
        var built = ClassBuilder.BuildBlock(declaration);
        return Result(declaration.Diagnostics, built);
    }

    public static ValidationResult Validate(NetworkDeclaration declaration)
    {
        if (declaration.Diagnostics.Any(d => d.IsError)) return new ValidationResult(null, declaration.Diagnostics);
        var blocks = new Dictionary<BlockDeclaration, BuildResult>();
        var built = ClassBuilder.BuildNetwork(declaration, block =>
        {
            if (!blocks.TryGetValue(block, out var result))
            {
                result = block.Diagnostics.Any(d => d.IsError) ? Failed() : ClassBuilder.BuildBlock(block);
                blocks[block] = result;
            }
            return result;
        });
        return Result(declaration.Diagnostics, built);
    }

    private static BuildResult Failed()
    {
        var result = new BuildResult();
        result.Diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidStructure, null, "the block has errors"));
        return result;
    }

    private static ValidationResult Result(EquatableArray<DiagnosticInfo> parsed, BuildResult built)
    {
        var diagnostics = parsed.Concat(built.Diagnostics).Distinct().ToEquatableArray();
        return new ValidationResult(built.HasErrors ? null : built.Plan, diagnostics);
    }
}
