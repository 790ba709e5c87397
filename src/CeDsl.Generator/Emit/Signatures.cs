using System.Collections.Generic;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Emit;

/// <summary>What a generated class's constructor takes (before device and dtype), and its module name.</summary>
internal static class Signatures
{
    /// <summary>
    /// The parameters as (declaration, name): a block's <c>inChannels, width, [stride], [placement], [ceGroupSize, ceReduction]</c>,
    /// a network's <c>[classes], [inChannels]</c>; without <c>inChannels</c> when <paramref name="withInChannels"/> is false.
    /// </summary>
    public static IEnumerable<(string Declaration, string Name)> Parameters(ClassSignature signature, bool withInChannels)
    {
        var inChannels = ParameterNames.Of(Parameter.InChannels);
        switch (signature)
        {
            case BlockSignature block:
                if (withInChannels) yield return ("long " + inChannels, inChannels);
                yield return ("long width", "width");
                if (block.UsesStride) yield return ("long stride = 1", "stride");
                if (block.HasPlacement) yield return ($"Placement {ParameterNames.Placement} = {Expressions.Of(block.Defaults.Placement)}", ParameterNames.Placement);
                if (block.HasRuleSites)
                {
                    yield return ($"int ceGroupSize = {Literals.Long(block.Defaults.CEGroupSize)}", "ceGroupSize");
                    yield return ($"int ceReduction = {Literals.Long(block.Defaults.CEReduction)}", "ceReduction");
                }
                break;
            case NetworkSignature network:
                if (network.UsesClasses) yield return ($"long classes = {Literals.Long(network.Classes)}", "classes");
                if (network.UsesInputChannels && withInChannels) yield return ($"long {inChannels} = {Literals.Long(network.InputChannels)}", inChannels);
                break;
        }
    }

    /// <summary>The module's name: <c>nameof(X)</c>, or <c>nameof(X) + "." + nameof(Folded)</c> for a nested class.</summary>
    public static string ModuleName(TypeRef type) =>
        type.Outer is { } outer ? $"nameof({outer}) + \".\" + nameof({type.Name})" : $"nameof({type.Name})";
}
