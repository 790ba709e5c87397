using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace CeDsl.Generator.Model;

/// <summary>A source location as plain values (a <see cref="Location"/> would pin the syntax tree).</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

    public static LocationInfo? From(SyntaxNode? node) => node is null ? null : From(node.GetLocation());

    public static LocationInfo? From(Location location) =>
        location.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
}
