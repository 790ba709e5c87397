using CeDsl.IO;
using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Cli.Tests;

/// <summary>
/// <c>cedsl train</c> loses no run and writes nothing wrong: it checks everything a run depends on
/// before the first step (the run directory, its lock, the disk, the metrics file, the checkpoint it
/// resumes and whether that checkpoint fits), stops cleanly on SIGINT and SIGTERM, and stops a
/// diverged run before a non-finite checkpoint.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class RunSafetyTests(TrainedRun run) : IDisposable
{
    /// <summary>resnet20 on 64 images in batches of 16 for as long as a test needs (it is stopped), a progress line after every step.</summary>
    private static readonly string[] Endless = ["train", "--model", "resnet20", "--embedded", "--limit-train", "64", "--batch", "16",
        "--limit-test", "10", "--epochs", "1000", "--progress-every", "0.001"];

    private readonly string _directory = CliRun.TemporaryDirectory();

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>The shared run's recipe, so that its checkpoint resumes.</summary>
    private static string[] Recipe(string outDirectory) =>
        ["train", "--model", "ce-resnet20", "--epochs", $"{TrainedRun.Epochs}", "--seed", "3", .. CliRun.QuickTraining, "--out", outDirectory];

    /// <summary>
    /// libtorch's set_rng_state aborted the process (exit 134, c10::Error "Expected a CPUGeneratorImplState
    /// of size 5056") after the model and momentum were overwritten.
    /// </summary>
    [Fact]
    public void A_checkpoint_whose_generator_state_has_the_wrong_size_is_refused_by_name()
    {
        string damaged = Path.Combine(_directory, "damaged.safetensors");
        using (var scope = NewDisposeScope())
        {
            var content = Checkpoint.Read(run.Checkpoint);
            var tensors = content.Tensors.Select(t => (t.Key, t.Key == Checkpoint.TorchRngName ? zeros(4000, ScalarType.Byte) : t.Value)).ToList();
            Checkpoint.Write(damaged, content.Architecture, tensors, content.Training);
        }
        string resumed = Path.Combine(_directory, "resumed");

        var result = CliProcess.Run([.. Recipe(resumed), "--resume", damaged]);

        OptionValueTests.AssertOneLineError(result, "train");
        Assert.Contains($"Checkpoint '{damaged}' does not fit this trainer of ce-resnet20: the torch generator state ('rng/torch') is [4000] Byte; this libtorch's is [5056] Byte", result.Error);
        Assert.False(Directory.Exists(resumed));
    }

    [Fact]
    public void Continuing_a_run_into_a_directory_that_holds_another_run_is_refused_and_changes_nothing()
    {
        string other = CopyOfTheRun("other");
        var before = CliRun.Snapshot(other);

        var result = CliRun.Run([.. Recipe(other), "--resume", run.Checkpoint]);

        OptionValueTests.AssertOneLineError(result, "train");
        Assert.Contains($"--out: '{other}' already holds another run (checkpoint.safetensors, metrics.csv), which continuing '{run.Checkpoint}' there would overwrite", result.Error);
        CliRun.AssertUnchanged(before, other);
    }

    [Fact]
    public void A_second_run_into_the_same_directory_fails_at_once_and_the_lock_ends_with_the_process()
    {
        string shared = Path.Combine(_directory, "shared");
        using (var first = CliProcess.Start([.. Endless, "--out", shared]))
        {
            first.WaitForOutput(line => line.StartsWith("run: ", StringComparison.Ordinal));

            var second = CliRun.Run(["train", "--model", "resnet20", .. CliRun.QuickTraining, "--epochs", "1", "--out", shared, "--force"]);

            OptionValueTests.AssertOneLineError(second, "train");
            Assert.Contains($"--out: another cedsl train is writing to '{shared}' (it holds the lock on .cedsl-train.lock)", second.Error);
            Assert.DoesNotContain("epoch 1/1", second.Output);
        } // the first is killed (SIGKILL): no clean exit, and the system releases its lock.

        var third = CliRun.Run(["train", "--model", "resnet20", .. CliRun.QuickTraining, "--epochs", "1", "--out", shared, "--force"]);

        Assert.True(third.ExitCode == 0, third.ToString());
    }

    [Theory]
    [InlineData(CliProcess.SigInt, 130, "SIGINT (Ctrl+C)")]
    [InlineData(CliProcess.SigTerm, 143, "SIGTERM")]
    public void A_signal_saves_the_position_and_exits_with_the_signals_code(int signal, int exitCode, string name)
    {
        string directory = Path.Combine(_directory, "signalled");
        using var training = CliProcess.Start([.. Endless, "--out", directory]);
        training.WaitForOutput(line => line.StartsWith("progress: epoch 1/1000 batch 2/4", StringComparison.Ordinal));

        training.Signal(signal);
        var result = training.WaitForExit();

        Assert.True(result.ExitCode == exitCode, result.ToString());
        string checkpoint = Path.Combine(directory, "checkpoint.safetensors");
        var position = Checkpoint.ReadInfo(checkpoint).Training!.Position;
        Assert.True(position.GlobalStep >= 2, $"{position}");
        Assert.Equal($"cedsl train: interrupted by {name} at {Commands.TrainCommand.Describe(position, 4)}; saved {checkpoint}; continue with the same command and --resume {checkpoint}\n", result.Error);
        var resumed = CliRun.Run([.. Endless, "--out", directory, "--resume", checkpoint, "--pause-after", "1"]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
    }

    [Fact]
    public void Resuming_with_other_images_or_without_augmentation_is_refused_by_name()
    {
        string data = Path.Combine(_directory, "fashion-mnist");
        Directory.CreateDirectory(data);
        CliRun.WriteEmbeddedIdxFiles(data);
        CliRun.EditGzip(Path.Combine(data, "train-labels-idx1-ubyte.gz"), bytes => bytes[8] = (byte)((bytes[8] + 1) % 10));
        string resumed = Path.Combine(_directory, "resumed");
        string[] otherImages = [.. Recipe(resumed).Select(a => a == "--embedded" ? "--data" : a)];
        otherImages = [.. otherImages[..Array.IndexOf(otherImages, "--data")], "--data", data, .. otherImages[(Array.IndexOf(otherImages, "--data") + 1)..]];

        var images = CliRun.Run([.. otherImages, "--resume", run.Checkpoint]);
        var augmentation = CliRun.Run([.. Recipe(resumed), "--no-augment", "--resume", run.Checkpoint]);

        OptionValueTests.AssertOneLineError(images, "train");
        Assert.Contains("training images: the checkpoint was trained on Fashion-MNIST train, embedded subset, 64 images (SHA-256 ", images.Error);
        Assert.Contains($"the trainer has Fashion-MNIST train, {data}, 64 images (SHA-256 ", images.Error);
        OptionValueTests.AssertOneLineError(augmentation, "train");
        Assert.Contains("augmentation: the checkpoint's is crop padding 2 and horizontal flip, the trainer's none", augmentation.Error);
        Assert.False(Directory.Exists(resumed));
    }

    [Fact]
    public void A_damaged_metrics_file_is_found_before_the_first_step()
    {
        string copy = CopyOfTheRun("damaged-metrics");
        string metrics = Path.Combine(copy, "metrics.csv");
        File.AppendAllText(metrics, "3,12,0.1,oops\n");
        string checkpoint = Path.Combine(copy, "checkpoint.safetensors");
        byte[] before = File.ReadAllBytes(checkpoint);

        var result = CliRun.Run([.. Recipe(copy), "--resume", checkpoint]);

        OptionValueTests.AssertOneLineError(result, "train");
        Assert.Contains($"Metrics file '{metrics}', line 4:", result.Error);
        Assert.DoesNotContain("run: ", result.Output);
        Assert.Equal(before, File.ReadAllBytes(checkpoint));
    }

    [PrivateMountsFact]
    public void A_read_only_run_directory_is_found_before_the_first_step()
    {
        string readOnly = Path.Combine(_directory, "read-only");
        Directory.CreateDirectory(readOnly);

        var result = CliProcess.RunWithTmpfs(readOnly, "ro", [.. Endless, "--out", readOnly]);

        OptionValueTests.AssertOneLineError(result, "train");
        Assert.Contains($"--out: cannot write in '{readOnly}'", result.Error);
        Assert.DoesNotContain("progress:", result.Output);
    }

    [PrivateMountsFact]
    public void A_disk_without_room_for_a_checkpoint_is_found_before_the_first_step()
    {
        string small = Path.Combine(_directory, "small");
        Directory.CreateDirectory(small);

        // resnet20's checkpoint (parameters, buffers, momentum) takes about 2 MB.
        var result = CliProcess.RunWithTmpfs(small, "size=512k", [.. Endless, "--out", small]);

        OptionValueTests.AssertOneLineError(result, "train");
        Assert.Contains($"--out: Cannot write '{Path.Combine(small, "checkpoint.safetensors")}'", result.Error);
        Assert.Contains("because the disk was full", result.Error);
        Assert.EndsWith("Nothing was trained.\n", result.Error);
        Assert.DoesNotContain("progress:", result.Output);
    }

    /// <summary>
    /// Learning rate 1e30 wrecks the weights in one step. A CE network then failed in its CE layer
    /// ("the input contains NaN"); a BN network could train on, evaluate NaN and save a NaN checkpoint.
    /// </summary>
    [Theory]
    [InlineData("ce-resnet20")]
    [InlineData("resnet20")]
    public void A_diverged_run_stops_naming_epoch_and_step_and_writes_no_checkpoint(string model)
    {
        string directory = Path.Combine(_directory, model);

        var result = CliRun.Run(["train", "--model", model, "--lr", "1e30", .. CliRun.QuickTraining, "--epochs", "1", "--out", directory]);

        OptionValueTests.AssertOneLineError(result, "train");
        Assert.Contains($"cedsl train: error: {model} diverged: ", result.Error);
        Assert.Contains("holds non-finite values", result.Error);
        Assert.Contains("at epoch 1, batch 2 (step 2", result.Error);
        Assert.EndsWith("No checkpoint was written; try a lower --lr.\n", result.Error);
        Assert.DoesNotContain("the input contains NaN", result.Error);
        Assert.False(File.Exists(Path.Combine(directory, "checkpoint.safetensors")));
        Assert.False(File.Exists(Path.Combine(directory, "metrics.csv")));
    }

    [Theory]
    [InlineData("eval")]
    [InlineData("fold")]
    [InlineData("analyze")]
    [InlineData("summary")]
    [InlineData("bench")]
    public void A_checkpoint_holding_NaN_is_refused_by_every_command_that_reads_one(string command)
    {
        string path = Path.Combine(_directory, "nan.safetensors");
        using (var network = NetworkCatalog.Zoo.Find("ce-resnet20").Create())
        {
            using (torch.no_grad())
                network.state_dict()["layer2.0.ce.running_wm"].fill_(float.NaN);
            Checkpoint.SaveModel(path, network, "ce-resnet20");
        }
        string[] more = command switch
        {
            "eval" => ["--embedded", "--limit-test", "10"],
            "summary" => [],
            "bench" => ["--iterations", "1", "--warmup", "1"],
            _ => ["--embedded", "--limit-test", "10", "--out", Path.Combine(_directory, command + "-out")],
        };

        var result = CliRun.Run([command, "--checkpoint", path, .. more]);

        OptionValueTests.AssertOneLineError(result, command);
        Assert.Contains($"Checkpoint '{path}' holds NaN or infinite values in 'layer2.0.ce.running_wm' (the run that wrote it diverged)", result.Error);
        Assert.Equal([path], Directory.GetFileSystemEntries(_directory));
    }

    [Fact]
    public void Temporary_files_an_interrupted_save_left_are_removed_under_the_lock()
    {
        string copy = CopyOfTheRun("leftovers");
        string[] leftovers = [Path.Combine(copy, $".checkpoint.safetensors.{Guid.NewGuid():N}.tmp"), Path.Combine(copy, $".metrics.csv.{Guid.NewGuid():N}.tmp")];
        foreach (string file in leftovers)
            File.WriteAllText(file, "half a save");
        string unrelated = Path.Combine(copy, ".notes.tmp");
        File.WriteAllText(unrelated, "mine");

        var result = CliRun.Run([.. Recipe(copy), "--resume", Path.Combine(copy, "checkpoint.safetensors")]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("the checkpoint has finished all 2 epochs", result.Output);
        Assert.Contains("cedsl train: note: removed 2 temporary file(s) that an interrupted save left", result.Error);
        Assert.All(leftovers, file => Assert.False(File.Exists(file)));
        Assert.True(File.Exists(unrelated));
    }

    [Fact]
    public void A_redirected_run_prints_progress_lines_between_its_epoch_lines()
    {
        var result = CliRun.Run(["train", "--model", "resnet20", .. CliRun.QuickTraining, "--epochs", "1", "--progress-every", "0.001",
            "--out", Path.Combine(_directory, "progress")]);

        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Output.Split('\n');
        var progress = lines.Where(l => l.StartsWith("progress: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, progress.Count);
        Assert.Matches(@"^progress: epoch 1/1 batch 1/4, loss \d+\.\d{4} acc \d+\.\d\d%, \d+\.\d img/s, the epoch's training ends in about \d+:\d\d:\d\d$", progress[0]);
        Assert.True(Array.IndexOf(lines, progress[^1]) < Array.FindIndex(lines, l => l.StartsWith("epoch 1/1 ", StringComparison.Ordinal)));
    }

    private string CopyOfTheRun(string name)
    {
        string copy = Path.Combine(_directory, name);
        Directory.CreateDirectory(copy);
        foreach (string file in Directory.GetFiles(run.Directory))
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        return copy;
    }
}
