using System.Globalization;

namespace CeDsl.Architecture;

/// <summary>Whether a state-dict entry is a trained parameter or a buffer.</summary>
public enum StateKind
{
    /// <summary>A parameter (requires a gradient).</summary>
    Parameter,

    /// <summary>A buffer: running statistics, folded constants, index tensors.</summary>
    Buffer,
}

/// <summary>
/// A parameter or buffer of an operation's module, named relative to the module (the full state-dict
/// key is the node's <see cref="ArchitectureNode.Module"/>, a dot, and <see cref="Name"/>).
/// </summary>
/// <param name="Name">The key relative to the module, e.g. <c>weight</c> or <c>AR.fc.0.weight</c>.</param>
/// <param name="Shape">The tensor's shape as the module is built (empty for a scalar such as <c>num_batches_tracked</c>).</param>
/// <param name="Kind">Parameter or buffer.</param>
/// <param name="IsInteger">True for 64-bit integer tensors (<c>num_batches_tracked</c>, index buffers); false for the module's floating-point type.</param>
public sealed record StateEntry(string Name, IReadOnlyList<long> Shape, StateKind Kind, bool IsInteger = false)
{
    /// <summary>The number of elements.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    internal static StateEntry Parameter(string name, params long[] shape) => new(name, shape, StateKind.Parameter);

    internal static StateEntry Buffer(string name, params long[] shape) => new(name, shape, StateKind.Buffer);

    internal static StateEntry Index(string name, params long[] shape) => new(name, shape, StateKind.Buffer, IsInteger: true);

    internal StateEntry Under(string prefix) => this with { Name = prefix + "." + Name };
}

/// <summary>
/// What a node of a <see cref="ModuleArchitecture"/> computes: a module (its type and every argument it
/// was built with) or a dataflow operation (addition, concatenation, chunk, channel shuffle). Each
/// operation knows its output shape, its parameters and buffers, and its cost, so that an exporter needs
/// nothing but the architecture and a state dict. Compared by value.
/// </summary>
public abstract record Operation
{
    /// <summary>The operation's name, e.g. <c>Conv2d</c>: the module type, or the dataflow operation.</summary>
    public string Kind => GetType().Name.EndsWith("Op", StringComparison.Ordinal) ? GetType().Name[..^2] : GetType().Name;

    /// <summary>The number of inputs it takes: 1, except <see cref="AddOp"/> (2) and <see cref="ConcatOp"/> (2 or more, -1).</summary>
    public virtual int Arity => 1;

    /// <summary>The output shape for the given input shapes.</summary>
    /// <exception cref="ArgumentException">The inputs do not fit the operation; the message says why.</exception>
    public abstract TensorShape OutputShape(IReadOnlyList<TensorShape> inputs);

    /// <summary>The parameters and buffers of its module, each once (none for dataflow operations and stateless modules).</summary>
    public virtual IReadOnlyList<StateEntry> State => [];

    /// <summary>The parameters of its module (the elements of its <see cref="StateKind.Parameter"/> entries).</summary>
    public long Parameters => State.Where(s => s.Kind == StateKind.Parameter).Sum(s => s.Elements);

    /// <summary>
    /// Multiply-accumulates for one sample at evaluation time, by <c>NetworkSummary</c>'s convention:
    /// convolutions, linear layers, the per-sample channel maps and instance variances of CE, BD and AII,
    /// and the gates' linear layers; 0 for everything else.
    /// </summary>
    public virtual long MultiplyAccumulates(IReadOnlyList<TensorShape> inputs, TensorShape output) => 0;

    /// <summary>One operation per output element for normalizations and activations (<c>NetworkSummary.ElementwiseOperations</c>); 0 otherwise.</summary>
    public virtual long ElementwiseOperations(TensorShape output) => 0;

    /// <summary>The single input's shape, checked to be a feature map with <paramref name="channels"/> channels (any channels when null).</summary>
    private protected TensorShape Map(IReadOnlyList<TensorShape> inputs, long? channels = null)
    {
        var input = Single(inputs);
        if (!input.IsMap)
            throw new ArgumentException($"{Kind} needs a feature map (C, H, W), but its input is {input} features.");
        if (channels is { } expected && input.Channels != expected)
            throw new ArgumentException($"{Kind} was built for {expected} channels, but its input has {input.Channels} ({input}).");
        return input;
    }

    /// <summary>The single input's shape, checked to be flattened features (of <paramref name="features"/> when given).</summary>
    private protected TensorShape Flat(IReadOnlyList<TensorShape> inputs, long? features = null)
    {
        var input = Single(inputs);
        if (input.IsMap || input.Rank != 1)
            throw new ArgumentException($"{Kind} needs flattened features, but its input is {input}.");
        if (features is { } expected && input.Channels != expected)
            throw new ArgumentException($"{Kind} was built for {expected} features, but its input has {input.Channels}.");
        return input;
    }

    private protected TensorShape Single(IReadOnlyList<TensorShape> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count != 1)
            throw new ArgumentException($"{Kind} takes one input, got {inputs.Count}.");
        return inputs[0];
    }

    /// <summary>floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1, or ceil with <paramref name="ceil"/>, as PyTorch's convolutions and pooling compute it.</summary>
    private protected long Window(long size, long kernel, long stride, long padding, long dilation, bool ceil, string what)
    {
        long span = size + 2 * padding - dilation * (kernel - 1) - 1;
        long output = (ceil ? (span + stride - 1) / stride : span / stride) + 1;
        if (ceil && (output - 1) * stride >= size + padding) output--;
        if (span < 0 || output < 1)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{Kind}: a {kernel}x{kernel} {what} (stride {stride}, padding {padding}) does not fit an input of size {size}."));
        return output;
    }

    private protected static void Positive(long value, string name, string kind)
    {
        if (value <= 0)
            throw new ArgumentOutOfRangeException(name, value, $"{kind}: {name} must be positive.");
    }
}
