using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Passes;

/// <summary>The steps with CE placed; for a block, whether its constructor takes a placement and the paper's rule's parameters.</summary>
internal sealed record PlacementResult(EquatableArray<Step> Steps, bool HasPlacement, bool HasRuleSites, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>
/// The third pass: where Channel Equilibrium goes. CE, BD and AII must directly follow a normalization,
/// CE should precede an activation (CEDSL004, CEDSL005). A network with <c>Placement.None</c> drops its own
/// CE, BD and AII; with <c>Placement.Paper</c> and no CE of its own it puts one after every normalization
/// directly followed by an activation. A block marks its declared CE, BD and AII as built unless the
/// placement is None, or, declaring none, puts one (for <c>Placement.Paper</c>) after the last
/// normalization directly followed by an activation of each chain.
/// </summary>
internal static class CePlacement
{
    public static PlacementResult Apply(ClassDeclaration declaration, EquatableArray<Step> structure)
    {
        var steps = structure.ToList();
        var diagnostics = new List<DiagnosticInfo>();
        CheckNeighbours(declaration, steps, diagnostics);

        var declared = steps.Where(s => s.IsChannelEquilibrium).ToList();
        int nextId = steps.Count;
        Step PlacedAfter(Step norm, Dim groupSize, Dim reduction, Site site) =>
            new Step(nextId++, LayerSpecs.Implicit(new CEAttribute(), LayerKind.CE, norm.Spec.Location), norm.Chain, norm.Container)
            {
                InStem = norm.InStem, Site = site, After = norm.Id, Placed = new PlacedCe(groupSize, reduction),
            };

        if (declaration is NetworkDeclaration network)
        {
            switch (network.Placement)
            {
                case Placement.None:
                    steps.RemoveAll(s => s.IsChannelEquilibrium);
                    break;
                case Placement.Paper when declared.Count == 0 && network.CEInOwnLayers:
                    for (int i = steps.Count - 1; i >= 0; i--)
                    {
                        var step = steps[i];
                        if (step.Kind == LayerKind.Norm && Next(steps, i) is { IsActivation: true })
                            steps.Insert(i + 1, PlacedAfter(step, step.InStem ? network.StemCEGroupSize : network.CEGroupSize, network.CEReduction, Site.Always));
                    }
                    break;
            }
            return new PlacementResult(steps.ToEquatableArray(), false, false, diagnostics.ToEquatableArray());
        }

        if (declared.Count > 0)
        {
            for (int i = 0; i < steps.Count; i++)
            {
                if (steps[i].IsChannelEquilibrium) steps[i] = steps[i] with { Site = Site.Explicit };
            }
            return new PlacementResult(steps.ToEquatableArray(), true, false, diagnostics.ToEquatableArray());
        }

        // The paper's rule for a block: per chain, after the last norm directly followed by an activation.
        var lastPerChain = new Dictionary<int, int>();
        for (int i = 0; i < steps.Count; i++)
        {
            if (steps[i].Kind == LayerKind.Norm && Next(steps, i) is { IsActivation: true }) lastPerChain[steps[i].Chain] = i;
        }
        foreach (var i in lastPerChain.Values.OrderByDescending(i => i))
            steps.Insert(i + 1, PlacedAfter(steps[i], Dim.Var(Parameter.CEGroupSize), Dim.Var(Parameter.CEReduction), Site.Rule));
        bool placed = lastPerChain.Count > 0;
        return new PlacementResult(steps.ToEquatableArray(), placed, placed, diagnostics.ToEquatableArray());
    }

    /// <summary>The layer directly before step i in its chain, or null.</summary>
    private static Step? Previous(List<Step> steps, int i) =>
        i > 0 && steps[i - 1].IsModule && steps[i - 1].Chain == steps[i].Chain ? steps[i - 1] : null;

    /// <summary>The layer directly after step i: across [Add], the first layer applied to the sum.</summary>
    private static Step? Next(List<Step> steps, int i)
    {
        int j = i + 1;
        if (j < steps.Count && steps[j].Kind == LayerKind.Add) j++;
        else if (j < steps.Count && steps[j].Chain != steps[i].Chain) return null;
        return j < steps.Count && steps[j].IsModule ? steps[j] : null;
    }

    private static void CheckNeighbours(ClassDeclaration declaration, List<Step> steps, List<DiagnosticInfo> diagnostics)
    {
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (!step.IsChannelEquilibrium) continue;
            if (Previous(steps, i) is not { Kind: LayerKind.Norm })
                diagnostics.Add(DiagnosticInfo.Create(D.NotAfterNorm, step.Spec.Location, step.Label, DescribeBefore(declaration, steps, i)));
            if (step.Kind == LayerKind.CE && Next(steps, i) is not { IsActivation: true })
                diagnostics.Add(DiagnosticInfo.Create(D.CENotBeforeActivation, step.Spec.Location, step.Label, DescribeAfter(declaration, steps, i)));
        }
    }

    private static string DescribeBefore(ClassDeclaration declaration, List<Step> steps, int i)
    {
        if (i == 0) return $"the {declaration.KindName}'s input";
        var previous = steps[i - 1];
        return previous.Kind switch
        {
            LayerKind.Branch => $"the start of branch '{previous.BranchName}'",
            LayerKind.Block => "a stage",
            _ => "[" + previous.Label + "]",
        };
    }

    private static string DescribeAfter(ClassDeclaration declaration, List<Step> steps, int i)
    {
        int j = i + 1;
        if (j < steps.Count && steps[j].Kind == LayerKind.Add)
            return j + 1 < steps.Count ? "the residual addition and then [" + steps[j + 1].Label + "]" : "the residual addition";
        if (j >= steps.Count) return $"the end of the {declaration.KindName}";
        if (steps[j].Spec.Implicit) return "the head the generator adds (global average pooling, flatten, fc)";
        return steps[j].Kind switch
        {
            LayerKind.Branch => $"the start of branch '{steps[j].BranchName}'",
            LayerKind.Block => "a stage",
            _ => "[" + steps[j].Label + "]",
        };
    }
}
