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
        var result = AssertRefusedAndUntouched(Train("--model", "resnet20", "--embedded", "--resume", _run.Checkpoint), _run.Checkpoint);

        Assert.Contains("the checkpoint is 'ce-resnet20', the model is 'resnet20'", result.Error);
        Assert.Contains("Nothing was loaded", result.Error);
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
    [InlineData("train --schedule linear", "linear")]
    [InlineData("train --momentum 1", "--momentum must be in [0, 1)")]
    [InlineData("train --label-smoothing -0.1", "--label-smoothing must be in [0, 1)")]
    [InlineData("train --limit-train 0", "--limit-train must be positive")]
    [InlineData("train --milestones 2 1 --schedule step", "--milestones must be positive, increasing epochs")]
    [InlineData("train --milestones 2", "--milestones needs --schedule step")]
    [InlineData("train --embedded --data /tmp", "--data and --embedded exclude each other")]
    [InlineData("summary --model resnet20 --input 32x32", "--input must be CxHxW")]
    [InlineData("summary --model resnet20 --checkpoint a.safetensors", "Give --model (a zoo network) or --checkpoint")]
    [InlineData("summary --checkpoint a.safetensors --classes 3", "--classes applies to --model")]
    [InlineData("bench", "Give --model (zoo networks) or --checkpoint")]
    [InlineData("bench --model resnet20 --checkpoint a.safetensors", "Give --model (zoo networks) or --checkpoint")]
    [InlineData("eval", "--checkpoint")]
    [InlineData("analyze --checkpoint x.safetensors --out y --ratios 0,1.5", "--ratios must be numbers in [0, 1]; got '1.5'")]
    [InlineData("fold --checkpoint a.safetensors --out ./a.safetensors", "is the checkpoint being folded")]
    [InlineData("analyze --checkpoint x.safetensors --out y --ablate middle", "middle")]
    public void Bad_arguments_are_named_with_exit_code_1(string commandLine, string expected)
    {
        var result = CliRun.Run(commandLine.Split(' '));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(expected, result.Error);
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
