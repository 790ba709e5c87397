using System.Diagnostics;
using System.Globalization;

namespace CeDsl.Cli.Tests;

/// <summary>
/// experiments/summarize.py, which writes every table of docs/experiments.md from the committed run
/// outputs: the page is what the committed outputs give, and the script's statistics are right on runs
/// whose results are known.
/// </summary>
public sealed class ExperimentsSummaryTests : IDisposable
{
    private const int Epochs = 15, StepsPerEpoch = 468;

    private readonly string _directory = Directory.CreateTempSubdirectory("cedsl-summarize-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string Root()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "experiments", "summarize.py")))
                return directory.FullName;
        throw new InvalidOperationException("experiments/summarize.py not found above " + AppContext.BaseDirectory);
    }

    private static (int ExitCode, string Output) Summarize(params string[] arguments)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root() };
        start.ArgumentList.Add(Path.Combine(Root(), "experiments", "summarize.py"));
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }

    /// <summary>A finished 15-epoch run whose last test accuracy is 1 - error / 100, with the protocol's learning rates.</summary>
    private void Run(string name, double error)
    {
        string directory = Path.Combine(_directory, "results", "full", name);
        Directory.CreateDirectory(directory);
        var lines = new List<string> { "epoch,step,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,images_per_second,seconds" };
        for (int epoch = 1; epoch <= Epochs; epoch++)
        {
            int step = epoch * StepsPerEpoch;
            double lr = 0.1 * (1 + Math.Cos(Math.PI * ((step - 1) / (double)StepsPerEpoch) / Epochs)) / 2;
            double accuracy = epoch == Epochs ? 1 - error / 100 : 0.5;
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{epoch},{step},{lr:G9},0.5,0.9,0.3,{accuracy:R},100.0,720.000"));
        }
        File.WriteAllText(Path.Combine(directory, "metrics.csv"), string.Join('\n', lines) + "\n");
    }

    private string Page()
    {
        string page = Path.Combine(_directory, "docs", "experiments.md");
        Directory.CreateDirectory(Path.GetDirectoryName(page)!);
        File.Copy(Path.Combine(Root(), "docs", "experiments.md"), page);
        return page;
    }

    private static string Row(string page, string block, string start)
    {
        string text = File.ReadAllText(page);
        int from = text.IndexOf($"<!-- generated:{block} -->", StringComparison.Ordinal);
        Assert.True(from >= 0, $"no block {block}");
        string body = text[from..text.IndexOf("<!-- /generated -->", from, StringComparison.Ordinal)];
        return body.Split('\n').Single(line => line.StartsWith(start, StringComparison.Ordinal));
    }

    [Fact]
    public void The_experiments_page_is_what_the_committed_outputs_give()
    {
        var (exitCode, output) = Summarize("--check");

        Assert.True(exitCode == 0, output);
    }

    [Fact]
    public void Means_deviations_and_the_paired_comparison_are_those_of_the_runs()
    {
        // BN 8, 7, 9; CE 7, 6.5, 8: CE - BN = -1, -0.5, -1 (mean -5/6, s.d. 0.2887, t = 5, 2 degrees of freedom).
        foreach (var (seed, bn, ce) in new[] { (1, 8.0, 7.0), (2, 7.0, 6.5), (3, 9.0, 8.0) })
        {
            Run($"resnet20-s{seed}", bn);
            Run($"ce-resnet20-s{seed}", ce);
        }
        string page = Page();

        var (exitCode, output) = Summarize("--no-plots", "--results", Path.Combine(_directory, "results", "full"), "--doc", page);

        Assert.True(exitCode == 0, output);
        Assert.Equal("| resnet20 (BN) | 3 | 8.00 ± 1.00 | 8.00 | 7.00 | 9.00 |", Row(page, "variants", "| resnet20 "));
        Assert.Equal("| ce-resnet20 (CE) | 3 | 7.17 ± 0.76 | 7.00 | 6.50 | 8.00 |", Row(page, "variants", "| ce-resnet20 "));
        Assert.Equal("| se-resnet20 (SE) | 0 | pending | pending | pending | pending |", Row(page, "variants", "| se-resnet20 "));
        Assert.Equal("| 2 | 7.00 | pending | 6.50 | -0.50 | pending |", Row(page, "paired", "| 2 "));
        Assert.StartsWith("| mean ± s.d. |  |  |  | -0.83 ± 0.29 (lower in 3 of 3) | pending |", Row(page, "paired", "| mean"));
        // Student's t with 2 degrees of freedom: two-sided p = 1 - t / sqrt(2 + t^2) = 1 - 5 / sqrt(27) = 0.038.
        Assert.Contains("**reproduced**: -0.83 ± 0.29 points, lower in 3 of 3 seeds, paired t-test p = 0.04", Row(page, "claims", "| CE lowers the test error"));
        Assert.Contains("This schedule gives the learning_rate column of resnet20-s1/metrics.csv", File.ReadAllText(page));
        Assert.Contains("| se-resnet20-s1 | `--model se-resnet20 --seed 1` | pending |", File.ReadAllText(page));
    }

    /// <summary>An analysed run's ablation.csv: at ratio 0.5, three orders' accuracies around <paramref name="accuracy"/>.</summary>
    private void Ablation(string name, double accuracy)
    {
        string directory = Path.Combine(_directory, "results", "full", name, "analysis");
        Directory.CreateDirectory(directory);
        string Line(double ratio, double value) => string.Create(CultureInfo.InvariantCulture,
            $"x,NormalizationOutput,1,bn1,16,100,{ratio},{(int)(16 * ratio)},3,{value},0,{value - 0.01};{value};{value + 0.01}");
        File.WriteAllLines(Path.Combine(directory, "ablation.csv"),
            ["model,site,seed,targets,total_channels,images,ratio,ablated_channels,repeats,mean_accuracy,std_accuracy,accuracies", Line(0, 0.9), Line(0.5, accuracy)]);
    }

    [Fact]
    public void The_ablation_claim_waits_for_all_three_seeds()
    {
        // CE above BN at the one ablated ratio in every seed.
        foreach (int seed in new[] { 1, 2, 3 })
        {
            Run($"resnet20-s{seed}", 8);
            Run($"ce-resnet20-s{seed}", 7);
        }
        Ablation("resnet20-s2", 0.4);
        Ablation("ce-resnet20-s2", 0.6);
        string page = Page();
        string[] arguments = ["--no-plots", "--results", Path.Combine(_directory, "results", "full"), "--doc", page];
        const string claim = "| CE resists cumulative random channel ablation";

        var (exitCode, output) = Summarize(arguments);

        Assert.True(exitCode == 0, output);
        Assert.EndsWith("| pending (1 BN and 1 CE runs of 3 analysed; so far CE's mean accuracy higher at 1 of 1 ablated ratios) |", Row(page, "claims", claim));

        foreach (int seed in new[] { 1, 3 })
        {
            Ablation($"resnet20-s{seed}", 0.4);
            Ablation($"ce-resnet20-s{seed}", 0.6);
        }
        File.Delete(page);
        page = Page();
        (exitCode, output) = Summarize(arguments);

        Assert.True(exitCode == 0, output);
        Assert.EndsWith("| **reproduced**: CE's mean accuracy higher at 1 of 1 ablated ratios |", Row(page, "claims", claim));
    }

    [Fact]
    public void A_page_whose_tables_do_not_match_the_outputs_fails_the_check()
    {
        Run("resnet20-s1", 8);
        string page = Page();

        var (exitCode, output) = Summarize("--check", "--results", Path.Combine(_directory, "results", "full"), "--doc", page);

        Assert.Equal(1, exitCode);
        Assert.Contains("is not what the committed outputs give", output);
    }
}
