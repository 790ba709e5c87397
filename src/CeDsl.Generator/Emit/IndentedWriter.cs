using System;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CeDsl.Generator.Emit;

/// <summary>
/// A minimal indented text writer for generated C# (four spaces, '\n' line ends). An interpolated line is
/// appended piece by piece (<see cref="LineHandler"/>), numbers in the invariant culture.
/// </summary>
internal sealed class IndentedWriter
{
    /// <summary>
    /// The builder the last writer on this thread gave back with <see cref="Finish"/>: the generator writes its classes one
    /// after another, and a new 16K-character builder for each was a quarter of what emitting allocated.
    /// </summary>
    [ThreadStatic]
    private static StringBuilder? spare;

    /// <summary>A builder that grew past this many characters is not kept.</summary>
    private const int MaxSpareCapacity = 256 * 1024;

    private readonly StringBuilder builder;
    private int depth;

    public IndentedWriter()
    {
        builder = spare ?? new StringBuilder(16 * 1024);
        spare = null;
    }

    public IndentedWriter Line(string text = "")
    {
        if (text.Length > 0) builder.Append(' ', depth * 4).Append(text);
        builder.Append('\n');
        return this;
    }

    public IndentedWriter Line([InterpolatedStringHandlerArgument("")] ref LineHandler line)
    {
        builder.Append('\n');
        return this;
    }

    /// <summary>Writes an opening brace and returns a scope that writes the closing one.</summary>
    public IDisposable Block(string? header = null, string closing = "}")
    {
        if (header is not null) Line(header);
        Line("{");
        depth++;
        return new Closer(this, closing);
    }

    public IDisposable Indent()
    {
        depth++;
        return new Closer(this, null);
    }

    /// <summary>The text written; the writer gives its builder to the next one on this thread and must not be used again.</summary>
    public string Finish()
    {
        var text = builder.ToString();
        if (builder.Capacity <= MaxSpareCapacity)
        {
            builder.Clear();
            spare = builder;
        }
        return text;
    }

    /// <summary>Appends an interpolated line to the writer as it is formatted.</summary>
    [InterpolatedStringHandler]
    internal readonly ref struct LineHandler
    {
        private readonly StringBuilder builder;

        public LineHandler(int literalLength, int formattedCount, IndentedWriter writer)
        {
            builder = writer.builder;
            builder.Append(' ', writer.depth * 4);
        }

        public void AppendLiteral(string value) => builder.Append(value);

        public void AppendFormatted(string? value) => builder.Append(value);

        public void AppendFormatted(int value) => builder.Append(value.ToString(CultureInfo.InvariantCulture));

        public void AppendFormatted(long value) => builder.Append(value.ToString(CultureInfo.InvariantCulture));

        public void AppendFormatted<T>(T value) => builder.Append(value is IFormattable formattable ? formattable.ToString(null, CultureInfo.InvariantCulture) : value?.ToString());
    }

    private sealed class Closer : IDisposable
    {
        private readonly IndentedWriter writer;
        private readonly string? closing;

        public Closer(IndentedWriter writer, string? closing)
        {
            this.writer = writer;
            this.closing = closing;
        }

        public void Dispose()
        {
            writer.depth--;
            if (closing is not null) writer.Line(closing);
        }
    }
}
