using System.Globalization;
using System.Text.RegularExpressions;
using CeDsl.Cli;
using CeDsl.Data;
using CeDsl.IO;
using CeDsl.Networks;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CeDsl.Python.Tests.Distributed;

/// <summary>
/// The way past one machine and back: <c>cedsl export --pytorch</c> writes CE-ResNet-20, python/train_ddp.py trains it
/// a few steps as two DistributedDataParallel processes under torchrun (gloo on the loopback interface, SyncCE and
/// SyncBN on), on the embedded Fashion-MNIST subset written as IDX files, and writes its weights and its evaluation
/// logits of the first test images; then <c>cedsl eval</c> and <c>cedsl fold</c> take the weights as a plain state dict.
/// </summary>
public sealed class RoundTripRun : IDisposable
{
    public const string Network = "ce-resnet20";
    public const int TestImages = 200;

    public RoundTripRun()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("cedsl-round-trip-").FullName;
        Data = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "data")).FullName;
        WriteEmbeddedIdxFiles(Data);
        string module = Path.Combine(Directory, "ce_resnet20.py");
        Export = Cedsl("export", "--model", Network, "--pytorch", module);
        string run = Path.Combine(Directory, "run");
        Weights = Path.Combine(run, "model.safetensors");
        Logits = Path.Combine(run, "logits.safetensors");
        Training = PythonTorch.RunTorchrun(2, Path.Combine(AppContext.BaseDirectory, "python", "train_ddp.py"), TimeSpan.FromMinutes(10),
            "--network", module, "--out", run, "--data", Data, "--epochs", "1", "--batch", "32", "--lr", "0.02", "--limit-train", "128",
            "--limit-test", Invariant(TestImages), "--sync-statistics", "--seed", "3", "--logits", Logits).Output;
        string limit = Invariant(TestImages);
        Evaluation = Cedsl("eval", "--checkpoint", Weights, "--network", Network, "--data", Data, "--limit-test", limit);
        Folded = Path.Combine(Directory, "folded.safetensors");
        Folding = Cedsl("fold", "--checkpoint", Weights, "--network", Network, "--out", Folded, "--data", Data, "--limit-test", limit);
        FoldedEvaluation = Cedsl("eval", "--checkpoint", Folded, "--data", Data, "--limit-test", limit);
    }

    public string Directory { get; }

    public string Data { get; }

    public string Weights { get; }

    public string Logits { get; }

    public string Folded { get; }

    public string Export { get; }

    public string Training { get; }

    public string Evaluation { get; }

    public string Folding { get; }

    public string FoldedEvaluation { get; }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Runs <c>cedsl</c> in this process (evaluation and folding run no backward pass); its output, or an exception with it.</summary>
    private static string Cedsl(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exitCode = global::CeDsl.Cli.Cli.Run(args, output, error);
        if (exitCode != 0)
            throw new InvalidOperationException($"cedsl {string.Join(' ', args)} exited with {exitCode}:\n{output}\n{error}");
        return output.ToString();
    }

    /// <summary>The embedded subset's four IDX gzip files, as Debian's dataset-fashion-mnist installs the whole set.</summary>
    private static void WriteEmbeddedIdxFiles(string directory)
    {
        foreach (var split in new[] { DatasetSplit.Train, DatasetSplit.Test })
        foreach (bool images in new[] { true, false })
        {
            using var resource = typeof(FashionMnist).Assembly.GetManifestResourceStream(FashionMnist.EmbeddedResourceName(split, images))!;
            using var file = File.Create(Path.Combine(directory, FashionMnist.FileName(split, images)));
            resource.CopyTo(file);
        }
    }
}

public sealed class RoundTripTests(RoundTripRun run, ITestOutputHelper output) : IClassFixture<RoundTripRun>
{
    [Fact]
    public void Two_DDP_processes_with_SyncCE_trained_the_exported_network()
    {
        output.WriteLine(run.Export);
        output.WriteLine(run.Training);
        Assert.Contains("class CeResNet20(nn.Module)", File.ReadAllText(Path.Combine(run.Directory, "ce_resnet20.py")));
        Assert.Contains("CeResNet20 from", run.Training);
        Assert.Contains("2 process(es) of 16 images per step, 4 steps per epoch, batch statistics synchronized", run.Training);
        Assert.Contains("epoch 1/1  step 4", run.Training);
    }

    [Fact]
    public void CeDsl_loads_the_weights_strictly_and_computes_the_same_logits()
    {
        using var scope = NewDisposeScope();
        using var network = Zoo.Create(RoundTripRun.Network, classes: 10, inChannels: 1);
        StateDict.Load(network, run.Weights, strict: true);
        network.eval();

        using var test = FashionMnist.LoadSplit(run.Data, DatasetSplit.Test);
        using var loader = new BatchLoader(test, new BatchOptions { BatchSize = 100, PadTo = DataOptions.PadTo, Normalization = FashionMnist.Normalization });
        Tensor logits;
        using (no_grad())
            logits = cat(Enumerable.Range(0, RoundTripRun.TestImages / 100).Select(i => network.call(loader.GetBatch(0, i).Images)).ToList(), 0);
        var expected = SafeTensors.Load(run.Logits)["logits"];
        Assert.Equal(expected.shape, logits.shape);
        double largest = Math.Max(1, expected.abs().max().item<float>());
        double difference = (logits - expected).abs().max().item<float>() / largest;
        output.WriteLine($"largest logit {largest:G4}, largest difference {difference:E2} (relative)");
        Assert.True(difference <= 1e-5, $"CeDsl's logits differ from PyTorch's by {difference:E2} of the largest logit");
    }

    [Fact]
    public void Cedsl_eval_reports_the_loss_and_accuracy_PyTorch_measured()
    {
        output.WriteLine(run.Evaluation);
        var (loss, correct) = Parse(run.Evaluation);
        var metadata = SafeTensors.LoadMetadata(run.Logits);
        double pytorchLoss = double.Parse(metadata["test_loss"], CultureInfo.InvariantCulture);
        double pytorchAccuracy = double.Parse(metadata["test_accuracy"], CultureInfo.InvariantCulture);
        Assert.Equal(Math.Round(pytorchAccuracy * RoundTripRun.TestImages), correct);
        // cedsl prints the loss with 4 decimals.
        Assert.True(Math.Abs(loss - pytorchLoss) <= 6e-5, $"cedsl eval: test loss {loss}, PyTorch: {pytorchLoss}");
    }

    [Fact]
    public void The_trained_network_folds_and_the_folded_checkpoint_evaluates_the_same()
    {
        output.WriteLine(run.Folding);
        output.WriteLine(run.FoldedEvaluation);
        Assert.Contains("wrote " + run.Folded, run.Folding);
        Assert.Contains("model: ce-resnet20 (folded)", run.FoldedEvaluation);
        var (loss, correct) = Parse(run.Evaluation);
        var (foldedLoss, foldedCorrect) = Parse(run.FoldedEvaluation);
        Assert.Equal(correct, foldedCorrect);
        Assert.True(Math.Abs(loss - foldedLoss) <= 1e-3, $"folded: test loss {foldedLoss}, trained: {loss}");
    }

    /// <summary>"test loss 0.3456, accuracy 87.65% (8,765 of 10,000 images)" -&gt; (0.3456, 8765).</summary>
    private static (double Loss, long Correct) Parse(string evaluation)
    {
        var match = Regex.Match(evaluation, @"test loss ([0-9.]+), accuracy [0-9.]+% \(([0-9,]+) of ([0-9,]+) images\)");
        Assert.True(match.Success, evaluation);
        Assert.Equal(RoundTripRun.TestImages, long.Parse(match.Groups[3].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture));
        return (double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(match.Groups[2].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture));
    }
}
