using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// The zoo's state dicts against PyTorch: a CE-ResNet-20 trained in PyTorch loaded strictly and
/// giving PyTorch's outputs, round trips and clear errors for missing and extra keys. Fixtures:
/// Fixtures/make_zoo_fixtures.py. The released CE-ResNet-50: <see cref="ReleasedCeResNet50Tests"/>.
/// </summary>
public sealed class StateDictCompatibilityTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");
    private readonly string directory = Directory.CreateTempSubdirectory("cedsl-zoo-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

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
