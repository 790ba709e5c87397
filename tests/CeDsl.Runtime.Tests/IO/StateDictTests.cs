using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;
using Module = TorchSharp.torch.nn.Module;
using Model = TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>;

namespace CeDsl.Runtime.Tests.IO;

public sealed class StateDictTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    public static TheoryData<string> Formats() => new() { ".safetensors", ".dat" };

    private static Model ConvBnLinear(int seed)
    {
        manual_seed(seed);
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding: 1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 5));
    }

    /// <summary>A few training-mode forward passes so that BN's running statistics and counter are not at their initial values.</summary>
    private static void UpdateRunningStatistics(Model model)
    {
        using var scope = NewDisposeScope();
        model.train();
        using (no_grad())
        {
            for (int step = 0; step < 3; step++)
                model.call(randn(8, 3, 6, 6, dtype: model.parameters().First().dtype) * 2 + 1);
        }
    }

    /// <summary>Independent copies of every state-dict entry.</summary>
    private static Dictionary<string, Tensor> Snapshot(Module module)
        => module.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.detach().clone());

    private static void AssertStateEquals(IReadOnlyDictionary<string, Tensor> expected, Module module)
    {
        var actual = module.state_dict();
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, value) in expected)
        {
            Assert.Equal(value.dtype, actual[key].dtype);
            Assert.True(value.shape.SequenceEqual(actual[key].shape), key);
            Assert.True(value.equal(actual[key]).all().item<bool>(), $"'{key}' differs");
        }
    }

    [Fact]
    public void BatchNorm2d_state_dict_has_PyTorchs_five_keys_including_an_int64_num_batches_tracked()
    {
        using var bn = nn.BatchNorm2d(4);
        var state = bn.state_dict();

        Assert.Equal(new[] { "bias", "num_batches_tracked", "running_mean", "running_var", "weight" }, state.Keys.Order());
        Assert.Equal(ScalarType.Int64, state["num_batches_tracked"].dtype);
        Assert.Empty(state["num_batches_tracked"].shape);
        Assert.Equal(ScalarType.Float32, state["running_var"].dtype);
    }

    [Fact]
    public void TorchSharp_BatchNorm2d_built_with_an_explicit_dtype_has_a_floating_num_batches_tracked_which_loads_by_conversion()
    {
        using var scope = NewDisposeScope();
        // TorchSharp passes the dtype to num_batches_tracked too (PyTorch keeps it int64).
        var model = nn.Sequential(nn.Conv2d(3, 4, 3, padding: 1, dtype: ScalarType.Float32),
            nn.BatchNorm2d(4, dtype: ScalarType.Float32), nn.ReLU(), nn.Flatten(), nn.Linear(100, 3, dtype: ScalarType.Float32));
        Assert.Equal(ScalarType.Float32, model.state_dict()["1.num_batches_tracked"].dtype);

        var report = StateDict.Load(model, Path.Combine(AppContext.BaseDirectory, "Fixtures", "pytorch_sequential.safetensors"));

        var conversion = Assert.Single(report.Conversions);
        Assert.Equal(new DtypeConversion("1.num_batches_tracked", ScalarType.Int64, ScalarType.Float32), conversion);
        Assert.Equal(3.0f, model.state_dict()["1.num_batches_tracked"].item<float>());
        Assert.Equal(ScalarType.Float32, model.state_dict()["1.num_batches_tracked"].dtype);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Conv_BatchNorm_Linear_round_trips_with_identical_state_and_outputs(string extension)
    {
        string path = _directory.File("model" + extension);
        using var scope = NewDisposeScope();
        var original = ConvBnLinear(seed: 1);
        UpdateRunningStatistics(original);
        original.eval();
        var input = randn(2, 3, 6, 6);
        var expected = original.call(input);

        StateDict.Save(original, path);
        var restored = ConvBnLinear(seed: 2);
        Assert.False(restored.call(input).equal(expected).all().item<bool>()); // a different model before loading
        var report = StateDict.Load(restored, path);
        restored.eval();

        Assert.True(report.IsComplete);
        Assert.Equal(original.state_dict().Keys.Order(), report.Loaded.Order());
        AssertStateEquals(original.state_dict(), restored);
        Assert.Equal(3L, restored.state_dict()["1.num_batches_tracked"].item<long>());
        Assert.Equal(expected.data<float>().ToArray(), restored.call(input).data<float>().ToArray());
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Loading_copies_into_the_existing_parameter_and_buffer_tensors(string extension)
    {
        string path = _directory.File("model" + extension);
        using var scope = NewDisposeScope();
        var source = ConvBnLinear(seed: 1);
        UpdateRunningStatistics(source);
        StateDict.Save(source, path);

        var target = ConvBnLinear(seed: 2);
        var before = target.state_dict();
        StateDict.Load(target, path);

        var after = target.state_dict();
        foreach (var (key, tensor) in before)
            Assert.Same(tensor, after[key]); // optimizers holding these parameters keep working
        Assert.True(before["1.running_mean"].equal(source.state_dict()["1.running_mean"]).all().item<bool>());
    }

    /// <summary>
    /// File: Sequential(Linear(2,3), BatchNorm1d(3), Linear(3,4)). Module: Sequential(Linear(2,3), Linear(3,3), Linear(3,5), Linear(5,1)).
    /// Matching: 0.weight, 0.bias, 1.bias. Shape mismatches: 1.weight, 2.weight, 2.bias. Unexpected: BN's buffers. Missing: 3.*.
    /// </summary>
    private (Model Target, string Path) MismatchedPair(string extension)
    {
        string path = _directory.File("mismatch" + extension);
        manual_seed(3);
        var saved = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 4));
        StateDict.Save(saved, path);
        manual_seed(4);
        return (nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 5), nn.Linear(5, 1)), path);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Strict_load_reports_every_missing_unexpected_and_mismatched_key_in_one_exception_and_changes_nothing(string extension)
    {
        using var scope = NewDisposeScope();
        var (target, path) = MismatchedPair(extension);
        var before = Snapshot(target);

        var error = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(target, path));

        Assert.Equal(new[] { "3.bias", "3.weight" }, error.Missing.Order());
        Assert.Equal(new[] { "1.num_batches_tracked", "1.running_mean", "1.running_var" }, error.Unexpected.Order());
        Assert.Equal(new[]
            {
                "1.weight: file [3], module [3, 3]",
                "2.bias: file [4], module [5]",
                "2.weight: file [4, 3], module [5, 3]",
            },
            error.ShapeMismatches.Select(m => m.ToString()).Order());
        Assert.Equal(path, error.Path);
        Assert.Contains(path, error.Message);
        Assert.Contains("nothing was loaded", error.Message);
        foreach (string key in new[] { "3.weight", "3.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked", "1.weight", "2.weight", "2.bias" })
            Assert.Contains(key, error.Message);
        Assert.Contains("missing from the file (2)", error.Message);
        Assert.Contains("unexpected in the file (3)", error.Message);
        Assert.Contains("shape mismatches (3)", error.Message);

        // 0.weight, 0.bias and 1.bias match the file; a loader that copies as it goes would have changed them.
        AssertStateEquals(before, target);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Non_strict_load_copies_the_matching_keys_and_reports_what_it_skipped(string extension)
    {
        using var scope = NewDisposeScope();
        var (target, path) = MismatchedPair(extension);
        var before = Snapshot(target);
        var file = extension == ".safetensors" ? SafeTensors.Load(path) : null;

        var report = StateDict.Load(target, path, strict: false);

        Assert.Equal(new[] { "0.bias", "0.weight", "1.bias" }, report.Loaded.Order());
        Assert.Equal(new[] { "3.bias", "3.weight" }, report.Missing.Order());
        Assert.Equal(new[] { "1.num_batches_tracked", "1.running_mean", "1.running_var" }, report.Unexpected.Order());
        Assert.Equal(new[] { "1.weight", "2.bias", "2.weight" }, report.ShapeMismatches.Select(m => m.Key).Order());
        Assert.False(report.IsComplete);

        var after = target.state_dict();
        foreach (string key in new[] { "1.weight", "2.weight", "2.bias", "3.weight", "3.bias" })
            Assert.True(before[key].equal(after[key]).all().item<bool>(), $"'{key}' should be untouched");
        foreach (string key in report.Loaded)
        {
            Assert.False(before[key].equal(after[key]).all().item<bool>(), $"'{key}' should be loaded");
            if (file is not null)
                Assert.True(file[key].equal(after[key]).all().item<bool>());
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_float64_file_loads_into_a_float32_module_by_conversion_and_the_module_keeps_its_dtype(string extension)
    {
        string path = _directory.File("double" + extension);
        using var scope = NewDisposeScope();
        var source = ConvBnLinear(seed: 5);
        source.to(ScalarType.Float64); // like PyTorch's .double(): floating entries only, the BN counter stays int64
        UpdateRunningStatistics(source);
        StateDict.Save(source, path);
        var target = ConvBnLinear(seed: 6);

        var report = StateDict.Load(target, path);

        // The int64 BN counter is the only entry that needs no conversion.
        Assert.Equal(target.state_dict().Keys.Where(k => k != "1.num_batches_tracked").Order(), report.Conversions.Select(c => c.Key).Order());
        Assert.All(report.Conversions, c => Assert.Equal((ScalarType.Float64, ScalarType.Float32), (c.FileType, c.ModuleType)));
        foreach (var (key, value) in target.state_dict())
        {
            var original = source.state_dict()[key];
            Assert.Equal(key == "1.num_batches_tracked" ? ScalarType.Int64 : ScalarType.Float32, value.dtype);
            Assert.True(original.to(value.dtype).equal(value).all().item<bool>(), key);
        }
    }

    [Fact]
    public void Files_saved_in_TorchSharp_format_load_with_TorchSharps_own_loader_and_vice_versa()
    {
        string ours = _directory.File("ours.dat");
        string theirs = _directory.File("theirs.dat");
        using var scope = NewDisposeScope();
        var source = ConvBnLinear(seed: 7);
        UpdateRunningStatistics(source);

        StateDict.Save(source, ours);
        var loadedByTorchSharp = ConvBnLinear(seed: 8);
        loadedByTorchSharp.load(ours);
        AssertStateEquals(source.state_dict(), loadedByTorchSharp);

        source.save(theirs);
        var loadedByUs = ConvBnLinear(seed: 9);
        StateDict.Load(loadedByUs, theirs);
        AssertStateEquals(source.state_dict(), loadedByUs);

        Assert.Equal(File.ReadAllBytes(theirs), File.ReadAllBytes(ours));
    }

    [Fact]
    public void Non_contiguous_buffers_are_saved_in_TorchSharp_format_although_Module_save_cannot()
    {
        string path = _directory.File("transposed.dat");
        using var scope = NewDisposeScope();
        var source = new WithBuffer(arange(6, dtype: ScalarType.Float32).reshape(2, 3).t());
        Assert.Throws<InvalidOperationException>(() => source.save(_directory.File("by-torchsharp.dat")));

        StateDict.Save(source, path);
        var target = new WithBuffer(zeros(3, 2));
        StateDict.Load(target, path);

        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, target.state_dict()["table"].contiguous().data<float>().ToArray());
    }

    private sealed class WithBuffer : Module
    {
        private readonly Tensor table;

        public WithBuffer(Tensor table) : base(nameof(WithBuffer))
        {
            this.table = table;
            RegisterComponents();
        }
    }

    public static TheoryData<string, Func<byte[], byte[]>, string> CorruptTorchSharpFiles() => new()
    {
        { "truncated data", bytes => bytes[..^3], "needs more than the" },
        { "truncated key", bytes => bytes[..4], "the file ends inside the key of entry 0 (truncated file?)" },
        { "trailing bytes", bytes => [.. bytes, 1, 2], "2 bytes follow the last of the 9 entries" },
        { "unknown element type", bytes => WithFirstTypeCode(bytes, 12), "tensor '0.weight' has unknown or unsupported element type code 12" },
        { "empty file", _ => [], "the file ends inside the entry count (truncated file?)" },
    };

    /// <summary>Replaces the element-type code of the first entry (count byte, then key "0.weight" with its length byte).</summary>
    private static byte[] WithFirstTypeCode(byte[] bytes, byte code)
    {
        var copy = (byte[])bytes.Clone();
        Assert.Equal((byte)'0', copy[2]);
        copy[1 + 1 + "0.weight".Length] = code;
        return copy;
    }

    [Theory]
    [MemberData(nameof(CorruptTorchSharpFiles))]
    public void Corrupt_TorchSharp_files_throw_InvalidDataException_naming_the_file_and_leave_the_module_unchanged(
        string name, Func<byte[], byte[]> corrupt, string problem)
    {
        string path = _directory.File(name.Replace(' ', '_') + ".dat");
        using var scope = NewDisposeScope();
        var source = ConvBnLinear(seed: 10);
        StateDict.Save(source, path);
        File.WriteAllBytes(path, corrupt(File.ReadAllBytes(path)));
        var target = ConvBnLinear(seed: 11);
        var before = Snapshot(target);

        var error = Assert.Throws<InvalidDataException>(() => StateDict.Load(target, path));

        Assert.StartsWith($"Invalid TorchSharp state-dict file '{path}': ", error.Message);
        Assert.Contains(problem, error.Message);
        AssertStateEquals(before, target);
    }

    [Fact]
    public void Corrupt_safetensors_file_leaves_the_module_unchanged()
    {
        string path = _directory.File("cut.safetensors");
        using var scope = NewDisposeScope();
        StateDict.Save(ConvBnLinear(seed: 12), path);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^1]);
        var target = ConvBnLinear(seed: 13);
        var before = Snapshot(target);

        var error = Assert.Throws<InvalidDataException>(() => StateDict.Load(target, path));

        Assert.Contains(path, error.Message);
        AssertStateEquals(before, target);
    }

    [Fact]
    public void Safetensors_checkpoints_carry_the_format_metadata_PyTorch_tooling_expects()
    {
        string path = _directory.File("meta.safetensors");
        using var scope = NewDisposeScope();
        StateDict.Save(ConvBnLinear(seed: 14), path);

        Assert.Equal("pt", SafeTensors.LoadMetadata(path)["format"]);
    }
}
