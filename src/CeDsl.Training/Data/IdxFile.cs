using System.Buffers.Binary;
using System.IO.Compression;

namespace CeDsl.Data;

/// <summary>
/// The contents of an IDX file of unsigned bytes (the format of the MNIST family): the
/// dimension sizes from the header and the data that follows it, row-major.
/// </summary>
/// <param name="Dimensions">The size of each dimension, outermost first.</param>
/// <param name="Data">The elements, exactly the product of <paramref name="Dimensions"/> bytes.</param>
public sealed record IdxArray(int[] Dimensions, byte[] Data)
{
    /// <summary>The IDX magic number of this array: 0x0000 08 nn (unsigned bytes, nn dimensions).</summary>
    public int MagicNumber => IdxFile.UnsignedByteTypeCode << 8 | Dimensions.Length;
}

/// <summary>
/// Reads and writes gzip-compressed IDX files of unsigned bytes, validating everything a
/// damaged or wrong file can get wrong: the gzip signature, integrity and trailer, the magic
/// number, the dimension sizes, and a file length that matches the header exactly.
/// </summary>
public static class IdxFile
{
    /// <summary>The IDX type code of unsigned bytes.</summary>
    public const int UnsignedByteTypeCode = 0x08;

    /// <summary>The magic number of an IDX file of 3-dimensional unsigned bytes (images): 2051.</summary>
    public const int ImagesMagicNumber = UnsignedByteTypeCode << 8 | 3;

    /// <summary>The magic number of an IDX file of 1-dimensional unsigned bytes (labels): 2049.</summary>
    public const int LabelsMagicNumber = UnsignedByteTypeCode << 8 | 1;

    /// <summary>
    /// Reads a gzip-compressed IDX file and checks that its magic number is
    /// <paramref name="expectedMagicNumber"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not valid gzip, has another magic number,
    /// or is shorter or longer than its header says; the message names the file.</exception>
    public static IdxArray ReadGzip(string path, int expectedMagicNumber)
    {
        IO.InputFile.Check(path, "IDX file");
        using var file = File.OpenRead(path);
        return ReadGzip(file, path, expectedMagicNumber);
    }

    /// <summary>
    /// Reads a gzip-compressed IDX stream; <paramref name="displayName"/> names it in errors.
    /// </summary>
    /// <exception cref="InvalidDataException">The stream is not valid gzip, has another magic number,
    /// or is shorter or longer than its header says.</exception>
    public static IdxArray ReadGzip(Stream compressed, string displayName, int expectedMagicNumber)
    {
        long start = compressed.CanSeek ? compressed.Position : 0;
        if (compressed.CanSeek)
        {
            Span<byte> signature = stackalloc byte[2];
            int read = compressed.ReadAtLeast(signature, 2, throwOnEndOfStream: false);
            if (read < 2 || signature[0] != 0x1F || signature[1] != 0x8B)
                throw Invalid(displayName, "not a gzip file (it does not start with the gzip signature 1f 8b)");
            compressed.Position = start;
        }
        IdxArray array;
        using (var gzip = new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true))
            array = Read(gzip, displayName, expectedMagicNumber);
        if (compressed.CanSeek)
            CheckTrailer(compressed, start, 4L + 4L * array.Dimensions.Length + array.Data.Length, displayName);
        return array;
    }

    /// <summary>
    /// The decompressor checks the gzip trailer (CRC-32 and size) when it is there, but accepts a file
    /// that ends without one, as a file cut short by a few bytes does; so its size field, the last 4
    /// bytes, must be the decompressed length (mod 2^32). Files with several gzip members are not IDX files.
    /// </summary>
    private static void CheckTrailer(Stream compressed, long start, long decompressedLength, string displayName)
    {
        const int TrailerBytes = 8;
        Span<byte> size = stackalloc byte[4];
        if (compressed.Length - start >= TrailerBytes)
        {
            compressed.Position = compressed.Length - size.Length;
            compressed.ReadExactly(size);
            if (BinaryPrimitives.ReadUInt32LittleEndian(size) == (uint)decompressedLength)
                return;
        }
        throw Invalid(displayName, "truncated: the gzip trailer (CRC-32 and size) is missing or does not end the file");
    }

    private static IdxArray Read(Stream decompressed, string displayName, int expectedMagicNumber)
    {
        Span<byte> magic = stackalloc byte[4];
        int magicRead = ReadUpTo(decompressed, magic, displayName);
        if (magicRead < 4)
            throw Invalid(displayName, $"truncated: {magicRead} bytes, too short for the 4-byte IDX magic number");
        int magicNumber = BinaryPrimitives.ReadInt32BigEndian(magic);
        if (magicNumber != expectedMagicNumber)
            throw Invalid(displayName, $"wrong magic number {magicNumber} (0x{magicNumber:X8}), expected {expectedMagicNumber} (0x{expectedMagicNumber:X8}: {Describe(expectedMagicNumber)})");

        int rank = magicNumber & 0xFF;
        var sizeBytes = new byte[4 * rank];
        int sizesRead = ReadUpTo(decompressed, sizeBytes, displayName);
        if (sizesRead < sizeBytes.Length)
            throw Invalid(displayName, $"truncated: the header needs {sizeBytes.Length} bytes of dimension sizes after the magic number, the file has {sizesRead}");

        var dimensions = new int[rank];
        long elementCount = 1;
        for (int i = 0; i < rank; i++)
        {
            dimensions[i] = BinaryPrimitives.ReadInt32BigEndian(sizeBytes.AsSpan(4 * i));
            if (dimensions[i] <= 0)
                throw Invalid(displayName, $"dimension {i} has size {dimensions[i]}; sizes must be positive");
            elementCount *= dimensions[i];
            if (elementCount > Array.MaxLength)
                throw Invalid(displayName, $"the header's dimensions [{string.Join(", ", dimensions[..(i + 1)])}...] describe more than {Array.MaxLength} bytes");
        }

        var data = new byte[elementCount];
        int dataRead = ReadUpTo(decompressed, data, displayName);
        int headerLength = 4 + sizeBytes.Length;
        if (dataRead < data.Length)
            throw Invalid(displayName, $"truncated: the header [{string.Join(" x ", dimensions)}] promises {data.Length} data bytes after the {headerLength}-byte header, the file has {dataRead}");
        Span<byte> extra = stackalloc byte[1];
        if (ReadUpTo(decompressed, extra, displayName) != 0)
            throw Invalid(displayName, $"over-long: the file has more than the {data.Length} data bytes its header [{string.Join(" x ", dimensions)}] describes");
        return new IdxArray(dimensions, data);
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; gzip errors name the file.</summary>
    private static int ReadUpTo(Stream decompressed, Span<byte> buffer, string displayName)
    {
        try
        {
            return decompressed.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            // .NET reports every zlib data error as "unsupported compression method".
            throw Invalid(displayName, "not a valid gzip file: its compressed data, CRC-32 or size is damaged", e);
        }
    }

    /// <summary>Writes <paramref name="array"/> as a gzip-compressed IDX file (smallest gzip size).</summary>
    public static void WriteGzip(Stream destination, IdxArray array)
    {
        long elementCount = array.Dimensions.Aggregate(1L, (product, size) => product * size);
        if (elementCount != array.Data.Length)
            throw new ArgumentException($"IDX dimensions [{string.Join(" x ", array.Dimensions)}] describe {elementCount} bytes, the data has {array.Data.Length}.", nameof(array));
        using var gzip = new GZipStream(destination, CompressionLevel.SmallestSize, leaveOpen: true);
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, array.MagicNumber);
        gzip.Write(word);
        foreach (int size in array.Dimensions)
        {
            BinaryPrimitives.WriteInt32BigEndian(word, size);
            gzip.Write(word);
        }
        gzip.Write(array.Data);
    }

    private static string Describe(int magicNumber) => magicNumber switch
    {
        ImagesMagicNumber => "IDX unsigned-byte images, 3 dimensions",
        LabelsMagicNumber => "IDX unsigned-byte labels, 1 dimension",
        _ => $"IDX type 0x{magicNumber >> 8 & 0xFF:X2}, {magicNumber & 0xFF} dimensions",
    };

    private static string ErrorPrefix(string displayName) => $"IDX file '{displayName}': ";

    private static InvalidDataException Invalid(string displayName, string problem, Exception? inner = null) =>
        new(ErrorPrefix(displayName) + problem, inner);
}
