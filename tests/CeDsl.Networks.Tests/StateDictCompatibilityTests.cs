using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// The zoo's state dicts against PyTorch: the released CE-ResNet-50's keys, shapes and dtypes, a
/// CE-ResNet-20 trained in PyTorch loaded strictly and giving PyTorch's outputs, round trips and
/// clear errors for missing and extra keys. Fixtures: Fixtures/make_zoo_fixtures.py.
/// </summary>
public sealed class StateDictCompatibilityTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");
    private readonly string directory = Directory.CreateTempSubdirectory("cedsl-zoo-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private static (int HeaderLength, Dictionary<string, (string Dtype, long[] Shape, long Begin, long End)> Entries) ReadReleasedHeader(byte[] header)
    {
        int length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(header));
        using var json = JsonDocument.Parse(Encoding.UTF8.GetString(header, 8, length));
        var entries = new Dictionary<string, (string, long[], long, long)>();
        foreach (var property in json.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__") continue;
            var offsets = property.Value.GetProperty("data_offsets");
            entries[property.Name] = (property.Value.GetProperty("dtype").GetString()!,
                property.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                offsets[0].GetInt64(), offsets[1].GetInt64());
        }
        return (length, entries);
    }

    private static string SafeTensorsType(ScalarType type) => type switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Int64 => "I64",
        _ => type.ToString(),
    };

    [Fact]
    public void CeResNet50HasExactlyTheReleasedReferencesKeysShapesAndTypes()
    {
        var (_, released) = ReadReleasedHeader(File.ReadAllBytes(Path.Combine(Fixtures, "ce_resnet50_released.header")));
        using var network = new CeResNet50();
        var ours = network.state_dict();
        Assert.Equal(released.Keys.Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, tensor) in ours)
        {
            Assert.Equal(released[key].Shape, tensor.shape);
            // TorchSharp keeps num_batches_tracked as int64 like PyTorch when no dtype is given.
            Assert.Equal(released[key].Dtype, SafeTensorsType(tensor.dtype));
        }
        Assert.Contains("layer3.5.ce.AR.fc.1.bias", released.Keys);
        Assert.Contains("bn1.num_batches_tracked", released.Keys);
    }

    [Fact]
    public void CeResNet50LoadsTheReleasedModelsSafeTensorsFileStrictly()
    {
        // The header bytes are the ones PyTorch's export wrote; the data section is rebuilt with a
        // known pattern (the real weights would be 117 MB): element i of every tensor holds i % 7 - 3.
        var header = File.ReadAllBytes(Path.Combine(Fixtures, "ce_resnet50_released.header"));
        var (_, entries) = ReadReleasedHeader(header);
        var data = new byte[entries.Values.Max(e => e.End)];
        foreach (var (dtype, _, begin, end) in entries.Values)
        {
            int size = dtype == "I64" ? 8 : 4;
            for (long i = 0; i < (end - begin) / size; i++)
            {
                var slot = data.AsSpan((int)(begin + i * size), size);
                if (dtype == "I64") BinaryPrimitives.WriteInt64LittleEndian(slot, i % 7 - 3);
                else BinaryPrimitives.WriteSingleLittleEndian(slot, i % 7 - 3);
            }
        }
        var path = Path.Combine(directory, "ce_resnet50_pytorch.safetensors");
        File.WriteAllBytes(path, [.. header, .. data]);

        using var network = new CeResNet50();
        var report = StateDict.Load(network, path, strict: true);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        Assert.Equal(entries.Count, report.Loaded.Count);
        var state = network.state_dict();
        var expected = torch.arange(16 * 16 * 16, dtype: ScalarType.Int64).remainder(7).sub(3).to(ScalarType.Float32).reshape(16, 16, 16);
        Assert.True(state["layer1.0.ce.running_wm"].equal(expected).all().item<bool>());
        Assert.Equal(-3L, state["layer4.2.bn3.num_batches_tracked"].item<long>());
    }

    private static IReadOnlyDictionary<string, Tensor> PyTorchIo() => SafeTensors.Load(Path.Combine(Fixtures, "ce_resnet20_io.safetensors"));

    private static void AssertClose(Tensor expected, Tensor actual, double relative, string what)
    {
        var scale = expected.abs().max().item<float>();
        var error = (actual - expected).abs().max().item<float>();
        Assert.True(error <= relative * Math.Max(scale, 1e-6), $"{what}: max error {error:G3} against scale {scale:G3}");
    }

    [Fact]
    public void A_torch_save_checkpoint_of_a_DataParallel_CeResNet20_loads_strictly_and_gives_PyTorchs_outputs()
    {
        // The layout of the CE authors' released checkpoints: {"epoch", "arch", "best_acc1", "state_dict": {"module.conv1.weight": ...}}.
        using var network = new CeResNet20(classes: 10, inChannels: 1);
        var report = StateDict.Load(network, Path.Combine(Fixtures, "ce_resnet20_dataparallel.pth"), strict: true);
        Assert.True(report.IsComplete);
        using var scope = NewDisposeScope();
        var io = PyTorchIo();
        network.eval();
        using (no_grad())
            AssertClose(io["eval_logits"], network.call(io["input"]), 1e-4, "eval logits");
        var saved = SafeTensors.Load(Path.Combine(Fixtures, "ce_resnet20_pytorch.safetensors"));
        foreach (var (name, value) in network.state_dict())
            Assert.True(saved[name].to(value.dtype).eq(value).all().item<bool>(), $"{name} differs from the saved value");
    }

    [Fact]
    public void CeResNet20TrainedInPyTorchGivesPyTorchsOutputs()
    {
        using var network = new CeResNet20(classes: 10, inChannels: 1);
        var report = StateDict.Load(network, Path.Combine(Fixtures, "ce_resnet20_pytorch.safetensors"), strict: true);
        Assert.Empty(report.Missing);
        using var scope = NewDisposeScope();
        var io = PyTorchIo();
        using (no_grad())
        {
            network.eval();
            AssertClose(io["eval_logits"], network.call(io["input"]), 1e-4, "eval logits");
            network.train();
            AssertClose(io["train_logits"], network.call(io["input"]), 1e-4, "train logits");
        }
        var state = network.state_dict();
        foreach (var (key, value) in io.Where(p => p.Key.StartsWith("after.", StringComparison.Ordinal)))
        {
            var name = key["after.".Length..];
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
                Assert.Equal(value.item<long>(), state[name].item<long>());
            else
                AssertClose(value, state[name], 1e-4, name);
        }
    }

    [Theory]
    [InlineData("ce-resnet20")]
    [InlineData("se-resnet20")]
    [InlineData("bd-resnet20")]
    [InlineData("aii-resnet20")]
    [InlineData("ce-mobilenetv2")]
    [InlineData("ce-shufflenetv2-0.5x")]
    [InlineData("ce-vgg16-bn")]
    public void SaveAndReloadGivesIdenticalOutputs(string name)
    {
        var entry = Zoo.Find(name);
        bool small = entry.InputShape[1] == 32;
        long size = small ? 32 : 64;
        torch.manual_seed(3);
        using var trained = entry.Create(classes: 5);
        using var scope = NewDisposeScope();
        var input = torch.randn(4, 3, size, size);
        trained.train();
        using (no_grad()) trained.call(input); // moves the running statistics off their initial values
        var path = Path.Combine(directory, name + ".safetensors");
        StateDict.Save(trained, path);

        torch.manual_seed(4);
        using var fresh = entry.Create(classes: 5);
        StateDict.Load(fresh, path, strict: true);
        trained.eval();
        fresh.eval();
        using (no_grad())
            Assert.True(trained.call(input).equal(fresh.call(input)).all().item<bool>());
    }

    [Fact]
    public void MissingAndExtraKeysFailAndNameTheKeys()
    {
        using var network = new CeResNet20(classes: 10, inChannels: 1);
        var original = SafeTensors.Load(Path.Combine(Fixtures, "ce_resnet20_pytorch.safetensors"));

        var missing = original.Where(p => p.Key != "layer2.1.ce.AR.fc.3.weight").ToDictionary();
        var missingPath = Path.Combine(directory, "missing.safetensors");
        SafeTensors.Save(missing, missingPath);
        var error = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(network, missingPath, strict: true));
        Assert.Equal(["layer2.1.ce.AR.fc.3.weight"], error.Missing);
        Assert.Contains("layer2.1.ce.AR.fc.3.weight", error.Message);

        var extra = original.ToDictionary();
        extra["layer3.2.se.fc.0.weight"] = torch.zeros(16, 64);
        var extraPath = Path.Combine(directory, "extra.safetensors");
        SafeTensors.Save(extra, extraPath);
        error = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(network, extraPath, strict: true));
        Assert.Equal(["layer3.2.se.fc.0.weight"], error.Unexpected);
        Assert.Contains("layer3.2.se.fc.0.weight", error.Message);
    }

    [Fact]
    public void ABaselineCheckpointDoesNotLoadIntoTheCeNetwork()
    {
        using var baseline = Zoo.Create("resnet20", inChannels: 1);
        var path = Path.Combine(directory, "resnet20.safetensors");
        StateDict.Save(baseline, path);
        using var ce = Zoo.Create("ce-resnet20", inChannels: 1);
        var before = ce.state_dict()["ce1.x_weight"].clone();
        var error = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(ce, path, strict: true));
        Assert.Contains("ce1.running_wm", error.Missing);
        Assert.True(ce.state_dict()["ce1.x_weight"].equal(before).all().item<bool>(), "nothing is copied when the load fails");
    }
}
