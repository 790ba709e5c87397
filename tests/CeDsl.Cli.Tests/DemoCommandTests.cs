using System.CommandLine;
using CeDsl.Cli.Commands;

namespace CeDsl.Cli.Tests;

public class DemoCommandTests
{
    [Fact]
    public void Demo_trains_reports_lambda_and_evaluates_with_running_statistics()
    {
        var output = new StringWriter();

        int exitCode = DemoCommand.Run(steps: 3, batchSize: 8, seed: 7, output);

        string text = output.ToString();
        Assert.Equal(0, exitCode);
        Assert.Contains("3 steps of 8", text);
        // Rows "step loss acc lambda1 lambda2" for step 1 and the last step; lambda starts at sigmoid(0) = 0.5.
        var rows = text.Split('\n').Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(cells => cells.Length >= 5 && (cells[0] == "1" || cells[0] == "3")).ToList();
        Assert.Equal(["1", "3"], rows.Select(cells => cells[0]));
        double lambdaAtStep1 = double.Parse(rows[0][^2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(lambdaAtStep1, 0.49, 0.51);
        Assert.Contains("eval on 512 fresh images (running statistics)", text);
        Assert.Contains("ce2.running_wm", text);
        Assert.Contains("[2, 16, 16]", text);
        Assert.Contains("ce2.AR.running_scale", text);
    }

    [Fact]
    public void Demo_rejects_a_batch_too_small_for_batch_statistics()
    {
        var root = new RootCommand { DemoCommand.Create() };
        var result = root.Parse(["demo", "--batch", "1"]);
        Assert.Contains(result.Errors, e => e.Message.Contains("--batch must be at least 2"));
    }
}
