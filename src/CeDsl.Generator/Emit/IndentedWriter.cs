using System;
using System.Text;

namespace CeDsl.Generator.Emit;

/// <summary>A minimal indented text writer for generated C# (four spaces, '\n' line ends).</summary>
internal sealed class IndentedWriter
{
    private readonly StringBuilder builder = new();
    private int depth;

    public IndentedWriter Line(string text = "")
    {
        if (text.Length > 0) builder.Append(' ', depth * 4).Append(text);
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

    public override string ToString() => builder.ToString();

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
