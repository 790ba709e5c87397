using System.Globalization;
using System.IO.Compression;
using Microsoft.ML.OnnxRuntime;

// Classifies Fashion-MNIST test images with a model exported by CeDsl, using ONNX Runtime alone: no CeDsl,
// TorchSharp or libtorch in this program. The preprocessing (normalization, padding) and the class names come
// from the model's metadata.
//   dotnet run -- MODEL.onnx [FOLDER with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz]
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: Classify MODEL.onnx [FOLDER of Fashion-MNIST's t10k-*-ubyte.gz files]");
    return 2;
}
string folder = args.Length > 1 ? args[1] : "/usr/share/datasets/fashion-mnist";

using var session = new InferenceSession(args[0]);
var metadata = session.ModelMetadata.CustomMetadataMap;
double[] mean = Numbers(metadata["cedsl.input.mean"]);
double[] std = Numbers(metadata["cedsl.input.std"]);
string[] classes = metadata["cedsl.classes"].Split(',');
string inputName = session.InputNames[0], outputName = session.OutputNames[0];
int[] inputShape = session.InputMetadata[inputName].Dimensions; // [-1 (any batch), C, H, W]
int side = inputShape[2];
Console.WriteLine($"model: {metadata["cedsl.network"]} (CeDsl {metadata["cedsl.version"]}), input '{inputName}' {string.Join("x", inputShape[1..])}, {classes.Length} classes");

var (pixels, count, height, width) = ReadImages(Path.Combine(folder, "t10k-images-idx3-ubyte.gz"));
byte[] labels = ReadLabels(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"));
int top = (side - height) / 2, left = (side - width) / 2;

const int Batch = 100;
int correct = 0;
for (int start = 0; start < count; start += Batch)
{
    int size = Math.Min(Batch, count - start);
    var input = new float[size * side * side];
    for (int n = 0; n < size; n++)
    {
        for (int y = 0; y < side; y++)
        {
            for (int x = 0; x < side; x++)
            {
                // Zero-padded around the image (centred), then normalized, as in training.
                bool inside = y >= top && y < top + height && x >= left && x < left + width;
                double pixel = inside ? pixels[(long)(start + n) * height * width + (y - top) * width + (x - left)] : 0;
                input[(n * side + y) * side + x] = (float)((pixel / 255 - mean[0]) / std[0]);
            }
        }
    }
    using var value = OrtValue.CreateTensorValueFromMemory(input, [size, 1, side, side]);
    using var runOptions = new RunOptions();
    using var outputs = session.Run(runOptions, [inputName], [value], [outputName]);
    var logits = outputs[0].GetTensorDataAsSpan<float>();
    for (int n = 0; n < size; n++)
    {
        var row = logits.Slice(n * classes.Length, classes.Length);
        int predicted = 0;
        for (int c = 1; c < row.Length; c++)
            if (row[c] > row[predicted]) predicted = c;
        if (predicted == labels[start + n]) correct++;
        if (start + n < 5)
            Console.WriteLine($"image {start + n}: {classes[predicted]} (label {classes[labels[start + n]]})");
    }
}
Console.WriteLine($"ONNX Runtime: accuracy {100.0 * correct / count:F2}% ({correct} of {count} test images)");
return 0;

static double[] Numbers(string text) => text.Split(',').Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray();

// IDX files (gzip): a big-endian magic (0x0803 images, 0x0801 labels), the sizes, then one byte per pixel or label.
static (byte[] Pixels, int Count, int Height, int Width) ReadImages(string path)
{
    using var reader = new BinaryReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
    if (BigEndian(reader) != 0x0803) throw new InvalidDataException($"{path} is not an IDX image file.");
    int count = BigEndian(reader), height = BigEndian(reader), width = BigEndian(reader);
    return (reader.ReadBytes(count * height * width), count, height, width);
}

static byte[] ReadLabels(string path)
{
    using var reader = new BinaryReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
    if (BigEndian(reader) != 0x0801) throw new InvalidDataException($"{path} is not an IDX label file.");
    return reader.ReadBytes(BigEndian(reader));
}

static int BigEndian(BinaryReader reader) => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(reader.ReadBytes(4));
