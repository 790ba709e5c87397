using System;
using System.Collections.Generic;
using CeDsl.Generator.Model;

namespace CeDsl.Generator.Validation;

/// <summary>
/// A numeric check on inferred sizes. A block's checks run once with its symbolic sizes (only the
/// constant ones can be decided there) and again per stage inside each network, with the stage's
/// channels, width, stride and spatial size.
/// </summary>
internal sealed class Check
{
    private readonly Dim[] operands;
    private readonly Func<long[], string, LocationInfo?, DiagnosticInfo?> evaluate;
    private readonly Func<string?, string> describe;
    private readonly LocationInfo? location;

    /// <param name="describe">The subject of the message, given the path prefix of the block instance (null inside the class itself).</param>
    /// <param name="evaluate">Returns the diagnostic for the operands' values, or null when they pass.</param>
    public Check(Site site, LocationInfo? location, Func<string?, string> describe, Dim[] operands, Func<long[], string, LocationInfo?, DiagnosticInfo?> evaluate)
    {
        Site = site;
        this.location = location;
        this.describe = describe;
        this.operands = operands;
        this.evaluate = evaluate;
    }

    /// <summary>Whether the checked layer exists only under some placements.</summary>
    public Site Site { get; }

    /// <summary>True when every operand is a constant: the block's own validation already decided it.</summary>
    public bool IsConstant => Array.TrueForAll(operands, o => o.IsConstant);

    /// <summary>The diagnostic, or null when the check passes or cannot be decided.</summary>
    /// <param name="prefix">For a block inside a network: the block's path ("layer2.0").</param>
    /// <param name="at">For a block inside a network: the stage's location.</param>
    public DiagnosticInfo? Run(IReadOnlyDictionary<string, long> environment, string? prefix = null, LocationInfo? at = null)
    {
        var values = new long[operands.Length];
        for (int i = 0; i < operands.Length; i++)
        {
            var value = operands[i].Evaluate(environment);
            if (value is null) return null;
            values[i] = value.Value;
        }
        return evaluate(values, describe(prefix), at ?? location);
    }
}
