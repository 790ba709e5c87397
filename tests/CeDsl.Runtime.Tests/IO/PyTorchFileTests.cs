using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.IO;

/// <summary>
/// Files written by PyTorch's torch.save (Fixtures/torch_save/make_torch_save_fixtures.py describes each):
/// read by content, strictly, with tensors and plain values only.
/// </summary>
public sealed class PyTorchFileTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch_save", name);

    private static nn.Module<Tensor, Tensor> Sequential() => nn.Sequential(
        nn.Conv2d(3, 4, 3, padding: 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3));

    [Fact]
    public void A_torch_save_state_dict_loads_strictly_with_the_values_PyTorch_saved()
    {
        using var scope = NewDisposeScope();
        using var model = Sequential();

        var report = StateDict.Load(model, Fixture("sequential.pt"));

        Assert.True(report.IsComplete);
        Assert.Equal(9, report.Loaded.Count);
        AssertEqualState(SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pytorch_sequential.safetensors")), model.state_dict());
    }

    [Fact]
    public void A_checkpoint_dict_of_a_DataParallel_model_loads_its_state_dict_without_the_module_prefix()
    {
        using var scope = NewDisposeScope();
        using var model = Sequential();

        var report = StateDict.Load(model, Fixture("checkpoint.pth"));

        Assert.True(report.IsComplete);
        Assert.Equal(9, report.Loaded.Count);
        AssertEqualState(SafeTensors.Load(Fixture("checkpoint_expected.safetensors")), model.state_dict());
        Assert.Equal(StateDict.FileFormat.PyTorch, StateDict.Detect(Fixture("checkpoint.pth")));
    }

    [Fact]
    public void Every_dtype_and_views_of_a_shared_storage_read_back_exactly()
    {
        using var scope = NewDisposeScope();
        var actual = StateDict.Read(Fixture("tensors.pt"));
        var expected = SafeTensors.Load(Fixture("tensors_expected.safetensors"));

        Assert.Contains("row", actual.Keys);
        Assert.Contains("transposed", actual.Keys);
        Assert.Contains("bf16", actual.Keys);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, tensor) in expected)
        {
            Assert.Equal(tensor.dtype, actual[name].dtype);
            Assert.Equal(tensor.shape, actual[name].shape);
            Assert.True(actual[name].is_contiguous());
            Assert.True(SameBytes(tensor, actual[name]), $"{name} differs from the value PyTorch saved");
        }
    }

    [Theory]
    [InlineData("hostile_system.pt", "'posix.system'")]
    [InlineData("hostile_class.pt", "'__main__.Payload'")]
    public void A_pickle_naming_any_other_Python_global_is_refused_by_name_and_nothing_is_loaded(string file, string global)
    {
        const string marker = "/tmp/cedsl-hostile-pickle-ran";
        File.Delete(marker);
        using var scope = NewDisposeScope();
        var model = new Module2x2();
        var before = model.weight.clone();

        var error = Assert.Throws<InvalidDataException>(() => StateDict.Load(model, Fixture(file)));

        Assert.Contains(global, error.Message);
        Assert.Contains("refused", error.Message);
        Assert.Contains(file, error.Message);
        Assert.False(File.Exists(marker));
        Assert.True(model.weight.eq(before).all().item<bool>());
    }

    [Fact]
    public void The_legacy_format_is_named_with_how_to_convert_it()
    {
        using var model = Sequential();
        var error = Assert.Throws<InvalidDataException>(() => StateDict.Load(model, Fixture("legacy.pt")));
        Assert.Contains("legacy format", error.Message);
        Assert.Contains("torch.save(torch.load(old_path), new_path)", error.Message);
    }

    [Fact]
    public void A_torch_save_file_whose_keys_do_not_fit_the_module_is_a_strict_mismatch()
    {
        using var model = nn.Sequential(nn.Conv2d(3, 4, 3, padding: 1), nn.BatchNorm2d(4));
        var error = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(model, Fixture("sequential.pt")));
        Assert.Contains("4.weight", error.Message);
    }

    [Fact]
    public void A_damaged_archive_names_the_file_and_the_problem()
    {
        string copy = Path.Combine(Path.GetTempPath(), $"cedsl-damaged-{Guid.NewGuid():N}.pt");
        try
        {
            byte[] bytes = File.ReadAllBytes(Fixture("sequential.pt"));
            File.WriteAllBytes(copy, bytes[..(bytes.Length / 2)]);
            using var model = Sequential();
            var error = Assert.Throws<InvalidDataException>(() => StateDict.Load(model, copy));
            Assert.Contains(copy, error.Message);
        }
        finally
        {
            File.Delete(copy);
        }
    }

    private sealed class Module2x2 : nn.Module
    {
        public readonly TorchSharp.Modules.Parameter weight = nn.Parameter(zeros(2, 2));

        public Module2x2() : base(nameof(Module2x2)) => RegisterComponents();
    }

    private static void AssertEqualState(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, tensor) in expected)
            Assert.True(tensor.to(actual[name].dtype).eq(actual[name]).all().item<bool>(), $"{name} differs from the value PyTorch saved");
    }

    private static bool SameBytes(Tensor a, Tensor b)
    {
        if (a.numel() == 0)
            return b.numel() == 0;
        return a.bytes.SequenceEqual(b.bytes);
    }
}
