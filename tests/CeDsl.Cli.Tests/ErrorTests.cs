namespace CeDsl.Cli.Tests;

/// <summary>
/// Bad files and arguments give one clear line on stderr and exit code 1, and leave the files that
/// were there untouched.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class ErrorTests : IDisposable
{
    private readonly TrainedRun _run;
    private readonly string _directory = CliRun.TemporaryDirectory();
    private readonly string _data;

    public ErrorTests(TrainedRun run)
    {
        _run = run;
        _data = Path.Combine(_directory, "fashion-mnist");
        Directory.CreateDirectory(_data);
        CliRun.WriteEmbeddedIdxFiles(_data);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_truncated_idx_file_is_named_and_the_existing_run_is_untouched()
    {
        string images = Path.Combine(_data, "train-images-idx3-ubyte.gz");
        byte[] whole = File.ReadAllBytes(images);
        File.WriteAllBytes(images, whole[..(whole.Length / 2)]);

        var result = AssertRefusedAndUntouched(Train("--data", _data), images);
        Assert.Contains("truncated", result.Error);
    }

    [Fact]
    public void An_idx_file_with_the_wrong_magic_number_is_named_and_the_existing_run_is_untouched()
    {
        string labels = Path.Combine(_data, "t10k-labels-idx1-ubyte.gz");
        CliRun.EditGzip(labels, bytes => bytes[3] = 3); // 0x00000803, the images' magic number, in the labels file

        var result = AssertRefusedAndUntouched(Train("--data", _data), labels);
        Assert.Contains("magic", result.Error, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("0x00000803", result.Error);
    }

    [Fact]
    public void Eval_names_a_damaged_idx_file_too()
    {
        string images = Path.Combine(_data, "t10k-images-idx3-ubyte.gz");
        File.WriteAllBytes(images, File.ReadAllBytes(images)[..100]);

        var result = CliRun.Run("eval", "--checkpoint", _run.Checkpoint, "--data", _data);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(images, result.Error);
        Assert.DoesNotContain("test loss", result.Output);
    }

    [Fact]
    public void Resuming_a_checkpoint_of_another_architecture_names_both_and_changes_nothing()
    {
        string elsewhere = Path.Combine(_directory, "elsewhere");
        var result = AssertRefusedAndUntouched(() => CliRun.Run(["train", "--epochs", "1", .. CliRun.QuickTraining, "--model", "resnet20",
            "--resume", _run.Checkpoint, "--out", elsewhere]), _run.Checkpoint);

        Assert.Contains("the checkpoint is 'ce-resnet20', the model is 'resnet20'", result.Error);
        Assert.Contains("Nothing was loaded", result.Error);
        Assert.False(Directory.Exists(elsewhere));
    }

    [Fact]
    public void A_file_that_is_not_a_checkpoint_is_refused_by_eval()
    {
        var result = CliRun.Run("eval", "--checkpoint", _run.Metrics, "--embedded");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("cedsl eval: error: ", result.Error);
        Assert.Contains(_run.Metrics, result.Error);
        Assert.DoesNotContain("   at ", result.Error);
    }

    [Fact]
    public void An_unknown_model_name_lists_the_closest_names()
    {
        var result = CliRun.Run("summary", "--model", "ce-resnet21");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("No network is called 'ce-resnet21'. Did you mean ce-resnet20", result.Error);
        Assert.Equal("", result.Output);
    }

    [Fact]
    public void A_run_directory_with_a_checkpoint_is_not_overwritten_without_resume_or_force()
    {
        var before = CliRun.Snapshot(_run.Directory);

        var result = CliRun.Run(["train", "--embedded", "--out", _run.Directory]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("already holds a run", result.Error);
        Assert.Contains("--resume", result.Error);
        CliRun.AssertUnchanged(before, _run.Directory);
    }

    [Theory]
    [InlineData("train --batch 1", "--batch must be at least 2")]
    [InlineData("train --epochs 0", "--epochs must be positive")]
    [InlineData("train --schedule linear", "--schedule must be cosine or step; got 'linear'.")]
    [InlineData("train --momentum 1", "--momentum must be in [0, 1)")]
    [InlineData("train --label-smoothing -0.1", "--label-smoothing must be in [0, 1)")]
    [InlineData("train --limit-train 0", "--limit-train must be positive")]
    [InlineData("train --milestones 2 1 --schedule step", "--milestones must be positive, increasing epochs")]
    [InlineData("train --milestones 2", "--milestones needs --schedule step")]
    [InlineData("train --embedded --data /tmp", "--data and --embedded exclude each other")]
    [InlineData("summary --model resnet20 --input 32x32", "--input must be CxHxW")]
    [InlineData("summary --model resnet20 --checkpoint a.safetensors", "Give --model (a network of the zoo or of --assembly) or --checkpoint")]
    [InlineData("summary --checkpoint a.safetensors --classes 3", "--classes applies to --model")]
    [InlineData("bench", "Give --model (networks of the zoo or of --assembly) or --checkpoint")]
    [InlineData("bench --model resnet20 --checkpoint a.safetensors", "Give --model (networks of the zoo or of --assembly) or --checkpoint")]
    [InlineData("eval", "--checkpoint")]
    [InlineData("analyze --checkpoint x.safetensors --out y --ratios 0,1.5", "--ratios must be numbers in [0, 1]; got '1.5'")]
    [InlineData("fold --checkpoint a.safetensors --out ./a.safetensors", "is the checkpoint being folded")]
    [InlineData("analyze --checkpoint x.safetensors --out y --ablate middle", "--ablate must be first or all; got 'middle'.")]
    [InlineData("train --warmup 1e9 --epochs 2", "--warmup 1000000000 is longer than the run (--epochs 2).")]
    [InlineData("train --milestones 100 --schedule step --epochs 2", "--milestones 100 is not below --epochs 2: the decay would never happen.")]
    [InlineData("train --resume a.safetensors --force", "--resume and --force exclude each other")]
    [InlineData("train --embedded --limit-train 32 --batch 100000", "--batch 100000 is more than the 32 training images")]
    [InlineData("tran --epochs 1", "Unrecognized command or argument 'tran'.")]
    public void Bad_arguments_are_named_with_exit_code_1(string commandLine, string expected)
    {
        var result = CliRun.Run(commandLine.Split(' '));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(expected, result.Error);
        Assert.Single(result.Error.TrimEnd('\n').Split('\n'));
        Assert.DoesNotContain("   at ", result.Error);
    }

    [Fact]
    public void A_directory_or_file_in_the_wrong_place_is_named_as_such()
    {
        string file = Path.Combine(_directory, "a-file");
        File.WriteAllText(file, "not a directory");

        (string[] Args, string Expected)[] cases =
        [
            (["eval", "--checkpoint", _directory, "--embedded"], $"Checkpoint '{_directory}' is a directory, not a file."),
            (["train", "--resume", _directory, "--embedded"], $"--resume: '{_directory}' is a directory; give the checkpoint file in it"),
            (["train", "--data", file], $"--data: '{file}' is a file; give the directory that holds the four IDX gzip files"),
            (["train", "--embedded", "--out", file], $"--out: '{file}' is a file; give a directory (it is created if missing)."),
            (["analyze", "--checkpoint", _run.Checkpoint, "--embedded", "--out", file], $"--out: '{file}' is a file; give a directory"),
            (["fold", "--checkpoint", _run.Checkpoint, "--embedded", "--out", _directory], $"--out: '{_directory}' is a directory; give the file to write"),
        ];
        foreach (var (args, expected) in cases)
        {
            var result = CliRun.Run(args);
            OptionValueTests.AssertOneLineError(result, args[0]);
            Assert.True(result.Error.Contains(expected, StringComparison.Ordinal), $"{string.Join(" ", args)}: {result}");
        }
    }

    [Fact]
    public void An_idx_file_cut_short_in_its_gzip_trailer_is_named_and_the_existing_run_is_untouched()
    {
        string labels = Path.Combine(_data, "train-labels-idx1-ubyte.gz");
        byte[] whole = File.ReadAllBytes(labels);
        File.WriteAllBytes(labels, whole[..^8]);

        var result = AssertRefusedAndUntouched(Train("--data", _data), labels);
        Assert.Contains("truncated: the gzip trailer (CRC-32 and size) is missing", result.Error);
    }

    private Func<CliResult> Train(params string[] args) => () =>
        CliRun.Run(["train", "--epochs", "1", .. CliRun.QuickTraining.Where(a => a != "--embedded"), "--out", _run.Directory, "--force", .. args]);

    /// <summary>Exit code 1, one line naming <paramref name="file"/>, no stack trace, and the shared run's files as they were.</summary>
    private CliResult AssertRefusedAndUntouched(Func<CliResult> command, string file)
    {
        var before = CliRun.Snapshot(_run.Directory);
        var result = command();
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains(file, result.Error);
        Assert.Single(result.Error.TrimEnd().Split('\n'));
        Assert.StartsWith("cedsl train: error: ", result.Error);
        CliRun.AssertUnchanged(before, _run.Directory);
        return result;
    }
}
