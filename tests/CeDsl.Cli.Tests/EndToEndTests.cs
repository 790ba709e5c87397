using System.Globalization;
using CeDsl.Analysis;
using CeDsl.Training;

namespace CeDsl.Cli.Tests;

/// <summary>train, resume, eval and analyze on the embedded subset, through the command line.</summary>
[Collection(TrainingCollection.Name)]
public sealed class EndToEndTests(TrainedRun run)
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    [Fact]
    public void Train_prints_the_data_used_one_line_per_epoch_and_the_training_throughput()
    {
        string text = run.Training.Output;
        Assert.Contains("train: Fashion-MNIST train, embedded subset, 1,000 images, using the first 64", text);
        Assert.Contains("test : Fashion-MNIST test, embedded subset, 500 images, using the first 50", text);
        Assert.Contains("model: ce-resnet20", text);
        Assert.Contains("label smoothing 0.1", text);
        Assert.Single(text.Split('\n'), l => l.StartsWith("epoch 1/2 ", StringComparison.Ordinal));
        Assert.Single(text.Split('\n'), l => l.StartsWith("epoch 2/2 ", StringComparison.Ordinal));
        string last = text.TrimEnd().Split('\n')[^1];
        Assert.StartsWith("done after 2 epochs", last);
        Assert.Matches(@"training \d+\.\d images/s \(128 images in ", last);

        var metrics = MetricsCsv.Read(run.Metrics);
        Assert.Equal([1, 2], metrics.Select(m => m.Epoch));
        Assert.Equal([4L, 8L], metrics.Select(m => m.GlobalStep));
        Assert.All(metrics, m => Assert.InRange(m.TestAccuracy!.Value, 0, 1));
        var info = Checkpoint.ReadInfo(run.Checkpoint);
        Assert.Equal("ce-resnet20", info.Architecture);
        Assert.Equal(new TrainingPosition(2, 0, 8), info.Training!.Position);
    }

    [Fact]
    public void A_run_paused_after_one_epoch_and_resumed_ends_bit_identical_to_the_uninterrupted_run()
    {
        string directory = Path.Combine(run.Root, "paused");
        string[] recipe = ["train", "--model", "ce-resnet20", "--epochs", $"{TrainedRun.Epochs}", "--seed", "3", .. CliRun.QuickTraining, "--out", directory];

        var first = CliRun.Succeeds([.. recipe, "--pause-after", "1"]);
        Assert.Contains("paused after epoch 1 of 2", first.Output);
        Assert.Equal(new TrainingPosition(1, 0, 4), Checkpoint.ReadInfo(Path.Combine(directory, "checkpoint.safetensors")).Training!.Position);

        var second = CliRun.Succeeds([.. recipe, "--resume", Path.Combine(directory, "checkpoint.safetensors")]);
        Assert.Contains("resumed from", second.Output);
        Assert.DoesNotContain("epoch 1/2 ", second.Output);

        // Model state, momentum buffers and generator state: every tensor equal, bit for bit.
        CliRun.AssertSameTensors(run.Checkpoint, Path.Combine(directory, "checkpoint.safetensors"));
        var expected = MetricsCsv.Read(run.Metrics);
        var actual = MetricsCsv.Read(Path.Combine(directory, "metrics.csv"));
        Assert.Equal(expected.Select(WithoutTiming), actual.Select(WithoutTiming));
    }

    [Fact]
    public void Resuming_with_another_recipe_is_refused_and_names_the_option()
    {
        string directory = Path.Combine(run.Root, "other-recipe");
        var result = CliRun.Run(["train", "--model", "ce-resnet20", "--epochs", $"{TrainedRun.Epochs}", "--seed", "3", "--lr", "0.05",
            .. CliRun.QuickTraining, "--out", directory, "--resume", run.Checkpoint]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("--lr 0.1 (now 0.05)", result.Error);
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public void Eval_reports_the_accuracy_the_last_epoch_measured()
    {
        var result = CliRun.Succeeds("eval", "--checkpoint", run.Checkpoint, "--embedded", "--limit-test", "50");

        double accuracy = MetricsCsv.Read(run.Metrics)[^1].TestAccuracy!.Value;
        Assert.Contains("model: ce-resnet20 from", result.Output);
        Assert.Contains($"({Math.Round(accuracy * 50)} of 50 images)", result.Output);
    }

    [Fact]
    public void Analyze_writes_channel_statistics_and_the_ablation_curve_as_csv_and_png()
    {
        string directory = Path.Combine(run.Root, "analysis");
        var result = CliRun.Succeeds("analyze", "--checkpoint", run.Checkpoint, "--embedded", "--limit-test", "50", "--out", directory,
            "--ratios", "0", "0.5|1", "--repeats", "2");

        var statistics = Assert.Single(AnalysisCsv.ReadStatistics(Path.Combine(directory, "channels.csv")));
        Assert.Equal("ce-resnet20", statistics.Model);
        Assert.Equal(50, statistics.Images);
        // ResNet-20: the stem's BN and two per block in 9 blocks, plus the projection shortcuts' BNs of stages 2 and 3.
        Assert.Equal(21, statistics.Layers.Count);
        Assert.Equal(16 + 6 * 16 + 6 * 32 + 6 * 64 + 32 + 64, statistics.Channels);
        Assert.All(statistics.Layers.Where(l => l.Rectifier != Rectifier.None), l => Assert.InRange(l.SparsityRatio!.Value, 0, 1));
        // The paper's criteria are reported over the 10 layers followed by a rectifier (the stem's and every block's bn1), named.
        var rectified = statistics.BeforeRectifier();
        Assert.Equal(10, rectified.Layers.Count);
        Assert.Contains("normalization layers followed by a rectifier: 10 of 21 (bn1, layer1.0.bn1, layer1.1.bn1, layer1.2.bn1, layer2.0.bn1,", result.Output);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"the CE paper's criteria: |gamma| < 0.001 (Fig. 3d): {100 * rectified.ZeroGammaRatio:F1}%; sparsity ratio, post-rectifier values < 0.001 on 50 images (Fig. 1): {100 * rectified.SparsityRatio:F1}%"), result.Output);
        Assert.Contains("the CE slides' ratios: gamma < 0.1 (Table 9): ", result.Output);
        Assert.Contains(AnalysisCsv.BeforeRectifierLayer, File.ReadAllText(Path.Combine(directory, "channels.csv")));

        var curve = Assert.Single(AnalysisCsv.ReadAblation(Path.Combine(directory, "ablation.csv")));
        Assert.Equal([0.0, 0.5, 1.0], curve.Points.Select(p => p.Ratio));
        // The stem's and every block's first BN: 16 + 3 x 16 + 3 x 32 + 3 x 64 channels.
        Assert.Equal(10, curve.Targets.Count);
        Assert.Equal(352, curve.TotalChannels);
        Assert.Equal([0, 176, 352], curve.Points.Select(p => p.AblatedChannels));
        double accuracy = MetricsCsv.Read(run.Metrics)[^1].TestAccuracy!.Value;
        Assert.Equal(accuracy, curve.Points[0].Mean, 1e-12);
        Assert.Equal(0, curve.Points[0].StandardDeviation);

        foreach (string png in new[] { "channels.png", "ablation.png" })
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(directory, png));
            Assert.True(bytes.AsSpan().StartsWith(PngSignature), $"{png} is not a PNG");
            Assert.InRange(bytes.Length, 10_000, 2_000_000);
        }
        Assert.Contains("ablation ratio", result.Output);
    }

    [Fact]
    public void Fold_writes_a_folded_checkpoint_that_eval_scores_like_the_trained_one()
    {
        string folded = Path.Combine(run.Root, "folded.safetensors");
        var fold = CliRun.Succeeds("fold", "--checkpoint", run.Checkpoint, "--out", folded, "--embedded", "--limit-test", "50");

        Assert.Contains("checked on 50 test images", fold.Output);
        Assert.Contains("same prediction for 50 (100.00%)", fold.Output);
        var info = Checkpoint.ReadInfo(folded);
        Assert.Equal("ce-resnet20/folded", info.Architecture);
        Assert.Null(info.Training);
        Assert.DoesNotContain(info.ModelTensors, t => t.Name.EndsWith("bn1.running_mean", StringComparison.Ordinal));

        var trained = CliRun.Succeeds("eval", "--checkpoint", run.Checkpoint, "--embedded", "--limit-test", "50");
        var inference = CliRun.Succeeds("eval", "--checkpoint", folded, "--embedded", "--limit-test", "50");
        Assert.Contains("model: ce-resnet20 (folded)", inference.Output);
        var (trainedLoss, trainedAccuracy) = LossAndAccuracy(trained.Output);
        var (foldedLoss, foldedAccuracy) = LossAndAccuracy(inference.Output);
        Assert.Equal(trainedAccuracy, foldedAccuracy);
        Assert.Equal(trainedLoss, foldedLoss, 1e-3);

        var again = CliRun.Run("fold", "--checkpoint", folded, "--out", Path.Combine(run.Root, "twice.safetensors"), "--embedded");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("is already folded", again.Error);
        var analyze = CliRun.Run("analyze", "--checkpoint", folded, "--out", Path.Combine(run.Root, "folded-analysis"), "--embedded");
        Assert.Equal(1, analyze.ExitCode);
        Assert.Contains("is folded, so its BatchNorm layers are gone", analyze.Error);
    }

    [Fact]
    public void Summary_prints_the_layers_and_the_parameter_count_of_a_network()
    {
        var result = CliRun.Succeeds("summary", "--model", "resnet20", "--input", "1x32x32");

        // He et al.'s ResNet-20 with projection shortcuts has 272,474 parameters on 3 channels; one input channel drops 2 x 16 x 3 x 3.
        Assert.Contains($"Parameters: {(272_474 - 2 * 16 * 9).ToString("N0", CultureInfo.InvariantCulture)}", result.Output);
        Assert.Contains("layer3.2.conv2", result.Output);
        Assert.Contains("Input: 1x32x32", result.Output);
    }

    [Fact]
    public void Bench_times_several_networks_in_one_table()
    {
        var result = CliRun.Succeeds("bench", "--model", "resnet20", "ce-resnet20", "--batch", "4", "--input", "1x32x32", "--iterations", "2", "--warmup", "1");

        foreach (string model in new[] { "resnet20", "ce-resnet20" })
        {
            var row = result.Output.Split('\n').Single(l => l.StartsWith(model + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("1x32x32", row[1]);
            double evalMs = double.Parse(row[3], CultureInfo.InvariantCulture), evalRate = double.Parse(row[4], CultureInfo.InvariantCulture);
            double trainMs = double.Parse(row[5], CultureInfo.InvariantCulture), trainRate = double.Parse(row[6], CultureInfo.InvariantCulture);
            Assert.True(evalMs > 0 && trainMs > 0);
            Assert.Equal(4000 / evalMs, evalRate, 0.1 + evalRate * 1e-3);
            Assert.Equal(4000 / trainMs, trainRate, 0.1 + trainRate * 1e-3);
        }
    }

    /// <summary>The loss and the "accuracy ... (n of N images)" part of eval's result line.</summary>
    private static (double Loss, string Accuracy) LossAndAccuracy(string output)
    {
        var match = System.Text.RegularExpressions.Regex.Match(output, @"test loss (\d+\.\d+), (accuracy .* images\))");
        Assert.True(match.Success, output);
        return (double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), match.Groups[2].Value);
    }

    [Fact]
    public void Bench_without_input_uses_each_networks_declared_input()
    {
        var result = CliRun.Succeeds("bench", "--model", "resnet20", "--batch", "2", "--iterations", "1", "--warmup", "1");

        var row = result.Output.Split('\n').Single(l => l.StartsWith("resnet20 ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("3x32x32", row[1]);
    }

    private static EpochMetrics WithoutTiming(EpochMetrics m) => m with { ImagesPerSecond = 0, Seconds = 0 };
}
