namespace CeDsl.Architecture;

// The operations of forward that are not modules: they hold no state and cost no multiply-accumulates.

/// <summary>The element-wise sum of two inputs of the same shape (a residual addition: main path, then shortcut).</summary>
public sealed record AddOp : Operation
{
    /// <inheritdoc/>
    public override int Arity => 2;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        if (inputs.Count != 2 || !inputs[0].Equals(inputs[1]))
            throw new ArgumentException($"{Kind} needs two inputs of the same shape, got ({string.Join(", ", inputs)}).");
        return inputs[0];
    }
}

/// <summary>The concatenation of feature maps along the channels (<c>torch.cat(inputs, 1)</c>), in input order.</summary>
public sealed record ConcatOp : Operation
{
    /// <inheritdoc/>
    public override int Arity => -1;

    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        if (inputs.Count < 2 || inputs.Any(i => !i.IsMap || i.Height != inputs[0].Height || i.Width != inputs[0].Width))
            throw new ArgumentException($"{Kind} needs two or more feature maps of the same height and width, got ({string.Join(", ", inputs)}).");
        return TensorShape.Map(inputs.Sum(i => i.Channels), inputs[0].Height, inputs[0].Width);
    }
}

/// <summary>
/// Chunk <see cref="Index"/> of <see cref="Chunks"/> equal chunks of the channels (<c>x.chunk(Chunks, 1)[Index]</c>):
/// ShuffleNetV2's channel split is chunks 0 and 1 of 2.
/// </summary>
public sealed record ChunkOp(int Chunks, int Index) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        var input = Map(inputs);
        if (Chunks <= 0 || Index < 0 || Index >= Chunks || input.Channels % Chunks != 0)
            throw new ArgumentException($"{Kind}: {input.Channels} channels cannot be split into {Chunks} equal chunks to take chunk {Index}.");
        return TensorShape.Map(input.Channels / Chunks, input.Height, input.Width);
    }
}

/// <summary>
/// ShuffleNet's channel shuffle with <see cref="Groups"/> groups:
/// <c>x.view(n, g, c / g, h, w).transpose(1, 2).reshape(n, c, h, w)</c>.
/// </summary>
public sealed record ChannelShuffleOp(int Groups) : Operation
{
    /// <inheritdoc/>
    public override TensorShape OutputShape(IReadOnlyList<TensorShape> inputs)
    {
        var input = Map(inputs);
        if (Groups <= 0 || input.Channels % Groups != 0)
            throw new ArgumentException($"{Kind}: {input.Channels} channels cannot be shuffled in {Groups} groups.");
        return input;
    }
}
