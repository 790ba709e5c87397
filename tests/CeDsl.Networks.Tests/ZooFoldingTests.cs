using CeDsl.Folding;
using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// Every zoo network folds (through <see cref="IFoldable"/>, without knowing its type) to a module
/// whose outputs equal its evaluation-mode outputs, at a small input (64x64 for the ImageNet
/// networks, 32x32 for the others) to keep the test short.
/// </summary>
public class ZooFoldingTests
{
    public static TheoryData<string> Names => new(Zoo.Names);

    private static double RelativeError(Tensor actual, Tensor truth) =>
        (actual.to(ScalarType.Float64) - truth.to(ScalarType.Float64)).abs().max().item<double>()
        / truth.to(ScalarType.Float64).abs().max().item<double>();

    [Theory]
    [MemberData(nameof(Names))]
    public void FoldedOutputsEqualEvaluationOutputs(string name)
    {
        var entry = Zoo.Find(name);
        long side = Math.Min(entry.InputShape[1], 64);
        long[] shape = [2, entry.InputShape[0], side, side];
        manual_seed(11);
        using var network = entry.Create();

        // Away from the initial values: the 1-D parameters (norm affine, CE lambda, biases) perturbed,
        // the running statistics estimated by a training-mode pass.
        using (no_grad())
        {
            foreach (var parameter in network.parameters().Where(p => p.dim() == 1))
                parameter.mul_(rand_like(parameter) * 0.4 + 0.8).add_(randn_like(parameter) * 0.05);
            network.train();
            network.call(randn(shape) * 2 + 0.5).Dispose();
        }
        network.eval();

        using var folded = ((IFoldable)network).Fold();
        // Pre-activation networks (BN -> ReLU -> conv) have no conv -> BN to fold: their BatchNorms stay.
        bool preActivation = entry.Family.StartsWith("preresnet", StringComparison.Ordinal);
        foreach (var (path, module) in folded.named_modules())
            Assert.False(module is ChannelEquilibrium or BatchDecorrelation or AdaptiveInstanceInverse || (module is BatchNorm2d && !preActivation),
                $"{name}: {path} is a {module.GetType().Name} in the folded network");

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = randn(shape) * 2 + 0.5;
        var expected = network.call(input);
        var actual = folded.call(input);
        double error = RelativeError(actual, expected);
        if (error <= 1e-4)
            return;

        // Some networks are less accurate than that in float32 themselves (CE after InstanceNorm:
        // about 1e-3 from the float64 result at 64x64). Then the folded network must be no further
        // from the float64 result than the unfolded one is.
        double unfoldedError, foldedError;
        using (var network64 = entry.Create(dtype: ScalarType.Float64))
        {
            network64.load_state_dict(network.state_dict());
            network64.eval();
            var truth = network64.call(input.to(ScalarType.Float64));
            unfoldedError = RelativeError(expected, truth);
            foldedError = RelativeError(actual, truth);
        }
        Assert.True(foldedError <= 1.5 * unfoldedError,
            $"{name}: folded vs unfolded {error:E2}; from the float64 result: folded {foldedError:E2}, unfolded {unfoldedError:E2}");
    }
}
