using System.Linq;
using Microsoft.CodeAnalysis;

namespace CeDsl.Generator.Model;

/// <summary>A diagnostic as plain values, created in the pipeline and reported by its own output node.</summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments) =>
        new(descriptor, location, arguments.Select(a => a is System.IFormattable f ? f.ToString(null, System.Globalization.CultureInfo.InvariantCulture) : a?.ToString() ?? "").ToEquatableArray());

    public bool IsError => Descriptor.DefaultSeverity == DiagnosticSeverity.Error;

    public Diagnostic ToDiagnostic() =>
        Diagnostic.Create(Descriptor, Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None, Arguments.Cast<object>().ToArray());
}
