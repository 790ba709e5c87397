namespace CeDsl.Cli.Tests;

/// <summary>
/// <c>cedsl export --pytorch</c>: the module file it writes for a zoo network or a checkpoint, and its errors (one line,
/// exit code 1, nothing written). That the written modules compute what the TorchSharp networks compute is shown in
/// tests/CeDsl.Python.Tests (ZooTwins, RoundTripTests).
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class ExportCommandTests(TrainedRun run) : IDisposable
{
    private readonly string _directory = CliRun.TemporaryDirectory();

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    [Fact]
    public void A_zoo_network_is_written_for_Fashion_MNIST_as_cedsl_train_builds_it()
    {
        string file = PathOf("resnet20.py");
        var result = CliRun.Succeeds("export", "--model", "resnet20", "--pytorch", file);

        Assert.Contains($"wrote {file}: resnet20 as the PyTorch module ResNet20 (input N x 1x32x32, ", result.Output);
        string source = File.ReadAllText(file);
        Assert.Contains("INPUT_SHAPE = (1, 32, 32)\nOUTPUT_SHAPE = (10,)\n", source);
        Assert.Contains("class ResNet20(nn.Module):", source);
        Assert.Contains("self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)", source);
        Assert.Contains("self.fc = nn.Linear(64, 10)", source);
        Assert.Contains("cedsl_torch.init_torchvision(self)", source);
        Assert.Contains("def create():", source);
        Assert.Equal([file], Directory.GetFiles(_directory));
    }

    [Fact]
    public void Classes_input_and_the_folded_form_are_chosen_by_options()
    {
        string file = PathOf("resnet18.py");
        CliRun.Succeeds("export", "--model", "ce-resnet18", "--classes", "1000", "--input", "3x224x224", "--folded", "--pytorch", file);

        string source = File.ReadAllText(file);
        Assert.Contains("INPUT_SHAPE = (3, 224, 224)", source);
        Assert.Contains("class CeResNet18Folded(nn.Module):", source);
        Assert.Contains("cedsl_torch.FoldedChannelEquilibrium(64, group_size=64", source);
        Assert.Contains("nn.Linear(512, 1000)", source);
        Assert.DoesNotContain("BatchNorm2d", source);
    }

    [Fact]
    public void A_checkpoint_is_written_as_its_network_with_the_hint_to_load_its_weights()
    {
        string file = PathOf("trained.py");
        var result = CliRun.Succeeds("export", "--checkpoint", run.Checkpoint, "--pytorch", file);
        Assert.Contains("ce-resnet20 from " + run.Checkpoint, result.Output);
        Assert.Contains($"cedsl_torch.load_weights(model, \"{run.Checkpoint}\")", result.Output);
        Assert.Contains("class CeResNet20(nn.Module):", File.ReadAllText(file));

        string folded = PathOf("folded.safetensors");
        CliRun.Succeeds("fold", "--checkpoint", run.Checkpoint, "--out", folded, "--embedded", "--limit-test", "50");
        CliRun.Succeeds("export", "--checkpoint", folded, "--pytorch", file);
        Assert.Contains("class CeResNet20Folded(nn.Module):", File.ReadAllText(file));
    }

    [Theory]
    [InlineData("Give the file to write: --pytorch FILE.py.", "--model", "resnet20")]
    [InlineData("does not end in .py", "--model", "resnet20", "--pytorch", "{dir}/resnet20.txt")]
    [InlineData("is a directory", "--model", "resnet20", "--pytorch", "{dir}")]
    [InlineData("Give --model (a zoo network) or --checkpoint (a trained or folded checkpoint), not both.", "--pytorch", "{dir}/n.py")]
    [InlineData("No network is called 'resnet21'. Did you mean resnet20", "--model", "resnet21", "--pytorch", "{dir}/n.py")]
    [InlineData("--input 1x64x64: vgg16-bn cannot take it: ", "--model", "vgg16-bn", "--input", "1x64x64", "--pytorch", "{dir}/n.py")]
    [InlineData("--folded, --classes and --input apply to --model", "--checkpoint", "{checkpoint}", "--classes", "5", "--pytorch", "{dir}/n.py")]
    [InlineData("--network names the network of a plain state dict", "--model", "resnet20", "--network", "resnet20", "--pytorch", "{dir}/n.py")]
    public void A_bad_command_line_is_one_line_and_writes_nothing(string message, params string[] arguments)
    {
        var result = CliRun.Run(["export", .. arguments.Select(a => a.Replace("{dir}", _directory, StringComparison.Ordinal).Replace("{checkpoint}", run.Checkpoint, StringComparison.Ordinal))]);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("cedsl export: error: ", result.Error, StringComparison.Ordinal);
        Assert.Contains(message, result.Error);
        Assert.Single(result.Error.TrimEnd().Split('\n'));
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }

    [Fact]
    public void A_network_that_cannot_take_the_input_names_the_node_and_leaves_an_existing_file_as_it_was()
    {
        string file = PathOf("vgg.py");
        File.WriteAllText(file, "# mine");
        var result = CliRun.Run("export", "--model", "vgg16-bn", "--input", "1x64x64", "--pytorch", file);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("node 'classifier'", result.Error);
        Assert.Equal("# mine", File.ReadAllText(file));
        Assert.Equal([file], Directory.GetFiles(_directory));
    }
}
