using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.IO;

/// <summary>Raw access to the storage of a contiguous CPU tensor, in spans no longer than a span can be.</summary>
internal static class TensorBytes
{
    internal delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>Largest chunk handed out; TorchSharp's <c>Tensor.bytes</c> refuses more than int.MaxValue bytes.</summary>
    internal const int DefaultMaxChunkBytes = 1 << 30;

    /// <summary>
    /// Calls <paramref name="action"/> on consecutive spans over the tensor's storage, in memory order.
    /// The spans alias the tensor: writing to them writes the tensor.
    /// </summary>
    internal static void ForEachChunk(Tensor tensor, ChunkAction action, int maxChunkBytes = DefaultMaxChunkBytes)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("Raw byte access needs a contiguous CPU tensor.", nameof(tensor));

        long elements = tensor.NumberOfElements;
        long elementSize = tensor.ElementSize;
        if (elements == 0)
            return;
        if (elements * elementSize <= maxChunkBytes)
        {
            action(tensor.bytes, 0);
            return;
        }

        long elementsPerChunk = Math.Max(1, maxChunkBytes / elementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < elements; start += elementsPerChunk)
        {
            using var chunk = flat.narrow(0, start, Math.Min(elementsPerChunk, elements - start));
            action(chunk.bytes, start * elementSize);
        }
    }
}
