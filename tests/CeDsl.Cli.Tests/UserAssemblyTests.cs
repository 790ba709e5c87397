using System.Globalization;
using CeDsl.IO;
using CeDsl.Training;
using TorchSharp;

namespace CeDsl.Cli.Tests;

/// <summary>
/// The commands on a user's own networks, declared in a project cedsl has never seen and given with
/// <c>--assembly</c>: found through their generated descriptions, built, summarized, timed, trained,
/// evaluated and folded like the zoo's.
/// </summary>
public sealed class UserAssemblyTests(UserProject project) : IClassFixture<UserProject>, IDisposable
{
    private readonly string _directory = CliRun.TemporaryDirectory();

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Assembly
    {
        get
        {
            Assert.True(project.Build.ExitCode == 0, project.Build.ToString());
            return project.Assembly;
        }
    }

    [Fact]
    public void Summary_shows_a_network_of_the_assembly_as_train_builds_it()
    {
        var result = CliRun.Succeeds("summary", "--assembly", Assembly, "--model", "TinyCeNet");

        Assert.StartsWith("TinyCeNet (TinyCeNet), 10 classes (declared: input 1x28x28, 10 classes)", result.Output);
        Assert.Contains("Input: 1x32x32", result.Output);
        Assert.Contains("ce1", result.Output);
        Assert.Contains("layer2.0.ce", result.Output);
        using var network = NetworkCatalog.Load(Assembly).Find("tinycenet").Create();
        Assert.Contains($"Parameters: {network.parameters().Sum(p => p.numel()).ToString("N0", CultureInfo.InvariantCulture)} ", result.Output);
    }

    [Fact]
    public void Bench_times_networks_of_the_assembly_beside_the_zoo_s()
    {
        var result = CliRun.Succeeds("bench", "--assembly", Assembly, "--model", "TinyCeNet", "resnet20", "--batch", "2", "--iterations", "1", "--warmup", "1");

        foreach (string model in new[] { "TinyCeNet", "resnet20" })
            Assert.Single(result.Output.Split('\n'), l => l.StartsWith(model + " ", StringComparison.Ordinal) && l.Contains(" 1x32x32 ", StringComparison.Ordinal));
    }

    [Fact]
    public void Train_eval_fold_and_eval_again_a_network_of_the_assembly()
    {
        string run = Path.Combine(_directory, "run"), checkpoint = Path.Combine(run, "checkpoint.safetensors"), folded = Path.Combine(_directory, "folded.safetensors");

        var train = CliRun.Succeeds(["train", "--assembly", Assembly, "--model", "TinyCeNet", "--epochs", "1", .. CliRun.QuickTraining, "--out", run]);
        Assert.Contains("model: TinyCeNet (", train.Output);
        Assert.Equal("TinyCeNet", Checkpoint.ReadInfo(checkpoint).Architecture);

        var trained = CliRun.Succeeds("eval", "--assembly", Assembly, "--checkpoint", checkpoint, "--embedded", "--limit-test", "50");
        Assert.Contains($"model: TinyCeNet from {checkpoint}", trained.Output);
        CliRun.Succeeds("fold", "--assembly", Assembly, "--checkpoint", checkpoint, "--out", folded, "--embedded", "--limit-test", "50");
        Assert.Equal("TinyCeNet/folded", Checkpoint.ReadInfo(folded).Architecture);
        var inference = CliRun.Succeeds("eval", "--assembly", Assembly, "--checkpoint", folded, "--embedded", "--limit-test", "50");
        Assert.Contains($"model: TinyCeNet (folded) from {folded}", inference.Output);
        Assert.Equal(Accuracy(trained.Output), Accuracy(inference.Output));

        string onnx = Path.Combine(_directory, "tiny.onnx");
        var export = CliRun.Succeeds("export", "--assembly", Assembly, "--checkpoint", checkpoint, "--onnx", onnx, "--embedded", "--limit-test", "50");
        Assert.Contains($"wrote {onnx}: TinyCeNet (folded), ONNX opset 17", export.Output);
        Assert.Contains(Accuracy(trained.Output), export.Output);
        using (var session = new Microsoft.ML.OnnxRuntime.InferenceSession(onnx))
            Assert.Equal("TinyCeNet", session.ModelMetadata.CustomMetadataMap["cedsl.model"]);

        // Without the assembly, the checkpoint names a network cedsl does not know, and says what to give.
        var unknown = CliRun.Run("eval", "--checkpoint", checkpoint, "--embedded");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains($"Checkpoint '{checkpoint}' is of 'TinyCeNet', which is not a network of the cedsl zoo", unknown.Error);
        Assert.Contains("give the assembly that declares it with --assembly", unknown.Error);
    }

    [Fact]
    public void A_plain_state_dict_of_a_network_of_the_assembly_is_evaluated_given_its_name()
    {
        string path = Path.Combine(_directory, "state.safetensors");
        torch.manual_seed(2);
        using (var network = NetworkCatalog.Load(Assembly).Find("TinyCeNet").Create())
        {
            // A training-mode pass gives CE and BN the running statistics evaluation needs.
            using (torch.no_grad())
                network.call(torch.randn(8, 1, 32, 32));
            StateDict.Save(network, path);
        }

        var result = CliRun.Succeeds("eval", "--assembly", Assembly, "--checkpoint", path, "--network", "MyNetworks.TinyCeNet", "--embedded", "--limit-test", "20");

        Assert.Contains($"model: TinyCeNet from {path}", result.Output);
        Assert.Matches(@"test loss \d+\.\d+, accuracy .* \(\d+ of 20 images\)", result.Output);
    }

    [Fact]
    public void A_network_that_fixes_its_classes_refuses_others_by_name()
    {
        var fixedClasses = CliRun.Run("summary", "--assembly", Assembly, "--model", "FixedHeadNet", "--classes", "3");

        OptionValueTests.AssertOneLineError(fixedClasses, "summary");
        Assert.Contains("FixedHeadNet: FixedHeadNet has 10 classes, fixed by its declaration (its constructor takes no classes); got 3.", fixedClasses.Error);
        CliRun.Succeeds("summary", "--assembly", Assembly, "--model", "FixedHeadNet", "--classes", "10");
    }

    [Fact]
    public void Export_writes_a_network_of_the_assembly_as_a_PyTorch_module()
    {
        string file = Path.Combine(_directory, "tiny.py");

        var result = CliRun.Succeeds("export", "--assembly", Assembly, "--model", "TinyCeNet", "--pytorch", file);

        Assert.Contains($"wrote {file}: TinyCeNet as the PyTorch module TinyCeNet (input N x 1x32x32, ", result.Output);
        string source = File.ReadAllText(file);
        Assert.Contains("class TinyCeNet(", source);
        Assert.Contains("self.ce1 = ", source);
    }

    [Fact]
    public void An_unknown_name_lists_the_networks_of_the_assembly_and_of_the_zoo()
    {
        var result = CliRun.Run("summary", "--assembly", Assembly, "--model", "TinyNet");

        OptionValueTests.AssertOneLineError(result, "summary");
        Assert.Contains($"No network is called 'TinyNet' in {Assembly} (its networks: FixedHeadNet, ResNet20, TinyCeNet) or in the zoo (resnet18, ", result.Error);
    }

    [Fact]
    public void A_class_is_named_by_its_exact_name_before_the_zoo_s_names_and_in_any_case_after_them()
    {
        var networks = NetworkCatalog.Load(Assembly);
        var zoo = typeof(CeDsl.Networks.Zoo).Assembly;

        Assert.NotSame(zoo, networks.Find("ResNet20").Type.Assembly);
        Assert.NotSame(zoo, networks.Find("MyNetworks.ResNet20").Type.Assembly);
        // A zoo checkpoint's name stays the zoo's.
        Assert.Same(zoo, networks.Find("resnet20").Type.Assembly);
        Assert.Equal("TinyCeNet", networks.Find("tinycenet").Name);
    }

    [Fact]
    public void A_missing_file_a_directory_a_file_that_is_no_assembly_and_an_assembly_without_networks_are_refused_by_name()
    {
        string missing = Path.Combine(_directory, "missing.dll"), text = Path.Combine(_directory, "notes.dll");
        File.WriteAllText(text, "not an assembly");
        string noNetworks = typeof(TorchSharp.torch).Assembly.Location;

        foreach (var (path, message) in new[]
        {
            (missing, $"--assembly: '{missing}' does not exist."),
            (_directory, $"--assembly: '{_directory}' is a directory; give the .dll your project builds"),
            (text, $"--assembly: '{text}' is not a .NET assembly."),
            (noNetworks, $"--assembly: '{noNetworks}' declares no network"),
        })
        {
            var result = CliRun.Run("summary", "--assembly", path, "--model", "TinyCeNet");
            OptionValueTests.AssertOneLineError(result, "summary");
            Assert.Contains(message, result.Error);
        }
    }

    private static string Accuracy(string output) => System.Text.RegularExpressions.Regex.Match(output, @"accuracy .* images\)").Value;
}
