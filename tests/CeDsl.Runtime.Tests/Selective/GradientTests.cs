using CeDsl.Selective;
using TorchSharp;
using TorchSharp.Modules;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

public class GradientTests
{
    [Fact]
    public void Shift_gradient_matches_finite_differences_and_reaches_BN_and_conv()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(606);
        using var layer = new SelectiveConv2d(3, 2, kernelSize: 3, k: 1, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        Assign(layer, "_ind_ptr", tensor(new long[] { -1, -1, 0 }));
        Assign(layer, "_bias", new[] { 0, 0, 0, 0, 0.37, -0.61 });
        layer.train();
        layer.Norm.momentum = 0;   // repeated train-mode forwards see identical state
        var input = randn(new long[] { 2, 3, 7, 9 }, ScalarType.Float64, generator: generator);
        var probe = randn(new long[] { 2, 2, 7, 9 }, ScalarType.Float64, generator: generator);
        double Loss() { using var d = NewDisposeScope(); return (layer.call(input) * probe).sum().ToDouble(); }

        (layer.call(input) * probe).sum().backward();

        var shift = (Parameter)State(layer, "_bias");
        double[] gradient = Values(shift.grad!);
        Assert.Equal(new double[] { 0, 0, 0, 0 }, gradient.Take(4));
        const double h = 1e-6;
        for (int axis = 0; axis < 2; axis++)
        {
            double[] values = Values(shift);
            values[4 + axis] += h;
            Assign(layer, "_bias", values);
            double up = Loss();
            values[4 + axis] -= 2 * h;
            Assign(layer, "_bias", values);
            double down = Loss();
            values[4 + axis] += h;
            Assign(layer, "_bias", values);
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric) > 1e-3, $"axis {axis}: finite difference {numeric} too small to be a test");
            Assert.Equal(numeric, gradient[4 + axis], 5);
        }
        foreach (string key in new[] { "conv.weight", "norm.weight", "norm.bias" })
        {
            var grad = ((Parameter)State(layer, key)).grad!;
            Assert.True(grad.abs().max().ToDouble() > 0, $"{key} received no gradient");
        }
    }

    [Fact]
    public void Shift_gradient_appears_once_training_moves_the_zeroed_weights_of_a_new_copy()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(707);
        using var layer = new SelectiveConv2d(10, 4, kernelSize: 1, gamma: 0.05, k: 2);
        RandomizeState(layer, generator);
        layer.Dealloc();
        var realloc = layer.Realloc(new Random(7));
        Assert.NotEmpty(realloc.Copies);
        using var optimizer = optim.SGD(layer.parameters(), learningRate: 0.1, momentum: 0.9);
        var input = randn(new long[] { 8, 10, 6, 6 }, generator: generator);
        var target = randn(new long[] { 8, 4, 6, 6 }, generator: generator);
        var shift = (Parameter)State(layer, "_bias");
        layer.train();

        double[] ShiftGradientOfSlots()
        {
            optimizer.zero_grad();
            using var d = NewDisposeScope();
            nn.functional.mse_loss(layer.call(input), target).backward();
            double[] all = Values(shift.grad!);
            return realloc.Copies.SelectMany(c => new[] { all[2 * c.Slot], all[2 * c.Slot + 1] }).ToArray();
        }

        // Right after re-allocation no conv weight reads the slot, so the loss does not depend on its shift.
        Assert.All(ShiftGradientOfSlots(), g => Assert.Equal(0.0, g));
        optimizer.step();
        Assert.Contains(ShiftGradientOfSlots(), g => Math.Abs(g) > 1e-7);
    }
}
