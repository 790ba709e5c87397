using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Training;

public class ScheduleAndLossTests
{
    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(2.5, 0.85355339059327373)] // (1 + cos(pi/4)) / 2
    [InlineData(5.0, 0.5)]
    [InlineData(7.5, 0.14644660940672624)]
    [InlineData(10.0, 0.0)]
    [InlineData(12.0, 0.0)]
    public void Cosine_follows_half_a_cosine_period(double epoch, double expected) =>
        Assert.Equal(expected, LearningRateSchedule.Cosine(10).Factor(epoch), 12);

    [Fact]
    public void Cosine_with_a_floor_ends_at_the_floor() =>
        Assert.Equal(0.1 + 0.9 * 0.5, LearningRateSchedule.Cosine(10, minFactor: 0.1).Factor(5), 12);

    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(29.99, 1.0)]
    [InlineData(30.0, 0.1)]
    [InlineData(59.5, 0.1)]
    [InlineData(60.0, 0.01)]
    [InlineData(95.0, 0.001)]
    public void Step_decays_by_gamma_at_each_milestone(double epoch, double expected) =>
        Assert.Equal(expected, LearningRateSchedule.Step([30, 60, 90]).Factor(epoch), 12);

    [Theory]
    [InlineData(0.0, 0.1)]
    [InlineData(2.5, 0.55)]
    [InlineData(4.0, 0.82)]
    [InlineData(5.0, 1.0)]
    [InlineData(30.0, 0.1)]
    public void Reference_recipe_warms_up_linearly_for_5_epochs_then_steps(double epoch, double expected) =>
        Assert.Equal(expected, LearningRateSchedule.Step([30, 60, 90]).WithLinearWarmup(5, startFactor: 0.1).Factor(epoch), 12);

    [Fact]
    public void Schedules_describe_themselves_invariantly()
    {
        Assert.Equal("cosine(10)", LearningRateSchedule.Cosine(10).Description);
        Assert.Equal("warmup(5, from 0.1) * step([30, 60, 90], x0.1)", LearningRateSchedule.Step([30, 60, 90]).WithLinearWarmup(5).Description);
    }

    [Fact]
    public void Bad_schedules_are_clear_errors()
    {
        Assert.Throws<ArgumentException>(() => LearningRateSchedule.Step([60, 30]));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant().WithLinearWarmup(1, startFactor: 2));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    [InlineData(0.3)]
    public void Label_smoothed_cross_entropy_is_the_PyTorch_formula(double smoothing)
    {
        using var scope = torch.NewDisposeScope();
        const int batch = 5, classes = 10;
        torch.random.manual_seed(3);
        var logits = torch.randn(batch, classes, ScalarType.Float64) * 3;
        long[] targets = [0, 9, 4, 4, 7];

        double actual = nn.functional.cross_entropy(logits, torch.tensor(targets), label_smoothing: smoothing).item<double>();

        // (1 - e) * (-log p_y) + e / K * sum_k (-log p_k), averaged over the batch.
        double[] values = logits.data<double>().ToArray();
        double expected = 0;
        for (int n = 0; n < batch; n++)
        {
            var row = values.AsSpan(n * classes, classes);
            double max = double.NegativeInfinity;
            foreach (double v in row)
                max = Math.Max(max, v);
            double logSum = 0;
            foreach (double v in row)
                logSum += Math.Exp(v - max);
            logSum = max + Math.Log(logSum);
            double uniform = 0;
            foreach (double v in row)
                uniform += logSum - v;
            expected += (1 - smoothing) * (logSum - row[(int)targets[n]]) + smoothing / classes * uniform;
        }
        Assert.Equal(expected / batch, actual, 12);
    }
}
