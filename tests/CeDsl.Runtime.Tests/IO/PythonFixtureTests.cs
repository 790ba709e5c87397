using System.Text.Json;
using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.IO;

/// <summary>
/// Files written by PyTorch 1.13 through an independent safetensors writer
/// (Fixtures/make_safetensors_fixture.py), with the expected values recorded by the script.
/// </summary>
public sealed class PythonFixtureTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    // TorchSharp's data<T>().ToArray() throws on tensors without elements.
    private static T[] Values<T>(Tensor tensor) where T : unmanaged
        => tensor.NumberOfElements == 0 ? [] : tensor.data<T>().ToArray();

    private static readonly Dictionary<string, ScalarType> TypesByName = new()
    {
        ["F64"] = ScalarType.Float64, ["F32"] = ScalarType.Float32, ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16, ["C64"] = ScalarType.ComplexFloat32, ["I64"] = ScalarType.Int64,
        ["I32"] = ScalarType.Int32, ["I16"] = ScalarType.Int16, ["I8"] = ScalarType.Int8,
        ["U8"] = ScalarType.Byte, ["BOOL"] = ScalarType.Bool,
    };

    [Fact]
    public void Every_dtype_written_by_PyTorch_reads_back_with_the_values_PyTorch_reported()
    {
        string path = Fixture("pytorch_dtypes.safetensors");
        using var scope = NewDisposeScope();
        var tensors = SafeTensors.Load(path);
        using var expected = JsonDocument.Parse(SafeTensors.LoadMetadata(path)["expected"]);

        var expectedNames = expected.RootElement.EnumerateObject().Select(p => p.Name).Order().ToArray();
        Assert.Equal(expectedNames, tensors.Keys.Order().ToArray());
        Assert.Equal(TypesByName.Keys.Order(), expected.RootElement.EnumerateObject()
            .Select(p => p.Value.GetProperty("dtype").GetString()!).Distinct().Order());

        foreach (JsonProperty entry in expected.RootElement.EnumerateObject())
        {
            Tensor actual = tensors[entry.Name];
            ScalarType type = TypesByName[entry.Value.GetProperty("dtype").GetString()!];
            Assert.Equal(type, actual.dtype);
            Assert.Equal(entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), actual.shape);

            JsonElement values = entry.Value.GetProperty("values");
            switch (type)
            {
                case ScalarType.Bool:
                    Assert.Equal(values.EnumerateArray().Select(v => v.GetBoolean()), Values<bool>(actual));
                    break;
                case ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte:
                    Assert.Equal(values.EnumerateArray().Select(v => v.GetInt64()), Values<long>(actual.to(ScalarType.Int64)));
                    break;
                case ScalarType.ComplexFloat32:
                    Assert.Equal(values.EnumerateArray().SelectMany(pair => pair.EnumerateArray().Select(v => v.GetDouble())),
                        Values<double>(view_as_real(actual).to(ScalarType.Float64)));
                    break;
                default: // every value of these types is exactly a double, and Python printed it exactly
                    Assert.Equal(values.EnumerateArray().Select(v => v.GetDouble()), Values<double>(actual.to(ScalarType.Float64)));
                    break;
            }
        }
    }

    [Fact]
    public void A_PyTorch_Sequential_state_dict_loads_strictly_by_name_and_reproduces_PyTorch_eval_output()
    {
        using var scope = NewDisposeScope();
        // The same architecture as the script's torch.nn.Sequential; keys "0.weight", "1.running_var", "4.bias", ...
        var model = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding: 1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 5 * 5, 3));

        var report = StateDict.Load(model, Fixture("pytorch_sequential.safetensors"));

        Assert.True(report.IsComplete);
        Assert.Equal(9, report.Loaded.Count);
        Assert.Empty(report.Conversions);
        var state = model.state_dict();
        Assert.Equal(3L, state["1.num_batches_tracked"].item<long>()); // three training steps in PyTorch

        var io = SafeTensors.Load(Fixture("pytorch_sequential_io.safetensors"));
        model.eval();
        using (no_grad())
        {
            var output = model.call(io["input"]);
            Assert.Equal(io["output"].shape, output.shape);
            float[] actual = output.data<float>().ToArray();
            float[] expectedOutput = io["output"].data<float>().ToArray();
            for (int i = 0; i < actual.Length; i++)
                Assert.True(Math.Abs(actual[i] - expectedOutput[i]) < 1e-5, $"output[{i}]: TorchSharp {actual[i]}, PyTorch {expectedOutput[i]}");
        }
    }

    [Theory]
    [InlineData("pytorch_dtypes.safetensors", true)]
    [InlineData("pytorch_sequential.safetensors", true)]
    [InlineData("pytorch_sequential_io.safetensors", false)]
    public void Resaving_a_file_written_by_the_Python_writer_reproduces_it_byte_for_byte(string name, bool hasMetadata)
    {
        string path = Fixture(name);
        string copy = Path.Combine(Path.GetTempPath(), $"cedsl-resave-{Guid.NewGuid():N}.safetensors");
        using var scope = NewDisposeScope();
        var metadata = SafeTensors.LoadMetadata(path);
        try
        {
            SafeTensors.Save(SafeTensors.Load(path), copy, hasMetadata ? metadata : null);
            Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(copy));
        }
        finally
        {
            File.Delete(copy);
        }
    }
}
