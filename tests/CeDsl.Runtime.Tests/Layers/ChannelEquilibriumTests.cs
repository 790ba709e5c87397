using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.Layers;

public class ChannelEquilibriumTests
{
    private static Tensor Input(int seed, long n = 4, long c = 8, long h = 5, long w = 6, double offset = 0.5) =>
        randn(new long[] { n, c, h, w }, dtype: float64, generator: new Generator((ulong)seed))
        * linspace(0.5, 2.0, c, dtype: float64).view(1, c, 1, 1) + offset;

    private static void SetXWeight(ChannelEquilibrium ce, double value)
    {
        using var noGrad = no_grad();
        ce.state_dict()["x_weight"].fill_(value);
    }

    /// <summary>Independent training-mode CE: lambda * wm @ X + (1 - lambda) * (y / s) * X.</summary>
    private static Tensor ExpectedTraining(ChannelEquilibrium ce, Tensor x, int groupSize, bool pool = false)
    {
        var state = ce.state_dict();
        double lambda = 1 / (1 + Math.Exp(-state["x_weight"].item<double>()));
        var (_, wm) = ReferenceMath.Decorrelation(x, groupSize, pool: pool);
        var variance = ReferenceMath.InstanceVariance(x);
        var factor = ReferenceMath.Gate(variance, ReferenceMath.Under(state, "AR.")) / ReferenceMath.Scale(x);
        return lambda * ReferenceMath.ApplyPerGroup(wm, x) + (1 - lambda) * factor.view(x.shape[0], x.shape[1], 1, 1) * x;
    }

    [Fact]
    public void Lambda_is_one_half_at_initialization()
    {
        using var ce = new ChannelEquilibrium(8, groupSize: 4);
        var xWeight = ce.state_dict()["x_weight"];
        Assert.Equal(new long[] { 1 }, xWeight.shape);
        Assert.Equal(0f, xWeight.item<float>());
        Assert.Equal(0.5f, xWeight.sigmoid().item<float>());
        Assert.Contains(ce.named_parameters(), entry => entry.name == "x_weight");
    }

    public static TheoryData<double, CePath> Mixes => new()
    {
        { 0.0, CePath.Kernels }, { 0.8, CePath.Kernels }, { 0.0, CePath.Operators }, { 0.8, CePath.Operators },
    };

    [Theory]
    [MemberData(nameof(Mixes))]
    public void Training_output_mixes_decorrelation_and_instance_inverse_by_lambda(double xWeight, CePath path)
    {
        var x = Input(1);
        using var ce = new ChannelEquilibrium(8, groupSize: 4, dtype: float64).On(path);
        SetXWeight(ce, xWeight);

        var output = ce.call(x);

        ce.AssertRanOn(path);

        Assert.True(output.allclose(ExpectedTraining(ce, x, groupSize: 4), rtol: 1e-10, atol: 1e-10));

        // The same through the two branch modules holding the same weights.
        using var bd = new BatchDecorrelation(8, groupSize: 4, dtype: float64);
        using var aii = new AdaptiveInstanceInverse(8, dtype: float64);
        aii.load_state_dict(ReferenceMath.Under(ce.state_dict(), "AR."));
        double lambda = 1 / (1 + Math.Exp(-xWeight));
        Assert.True(output.allclose(lambda * bd.call(x) + (1 - lambda) * aii.call(x), rtol: 1e-10, atol: 1e-10));
    }

    [Theory]
    [MemberData(nameof(CePaths.Both), MemberType = typeof(CePaths))]
    public void Running_statistics_after_three_steps_match_the_hand_computed_averages(CePath path)
    {
        using var ce = new ChannelEquilibrium(8, groupSize: 4, dtype: float64).On(path);
        var expectedMean = zeros(2, 4, 1, dtype: float64);
        var expectedWm = eye(4, dtype: float64).repeat(2, 1, 1);
        double expectedScale = 0;
        for (int step = 0; step < 3; step++)
        {
            var x = Input(20 + step, offset: 2.0 * step - 1);
            ce.call(x);
            ce.AssertRanOn(path);
            var (mean, wm) = ReferenceMath.Decorrelation(x, groupSize: 4);
            expectedMean = 0.9 * expectedMean + 0.1 * mean;
            expectedWm = 0.9 * expectedWm + 0.1 * wm;
            expectedScale = 0.9 * expectedScale + 0.1 * ReferenceMath.Scale(x);
        }

        var state = ce.state_dict();
        Assert.True(state["running_mean"].allclose(expectedMean, rtol: 1e-10, atol: 1e-12));
        Assert.True(state["running_wm"].allclose(expectedWm, rtol: 1e-10, atol: 1e-12));
        Assert.Equal(expectedScale, state["AR.running_scale"].item<double>(), 1e-12);
    }

    /// <summary>
    /// Both paths; on the kernels, a batch of 4 evaluates one sample per loop item (the folded CE's kernel)
    /// and a batch of 2 runs the training passes with the running statistics.
    /// </summary>
    public static TheoryData<CePath, long> EvaluationCases => new()
    {
        { CePath.Kernels, 4 }, { CePath.Kernels, 2 }, { CePath.Operators, 4 }, { CePath.Operators, 2 },
    };

    [Theory]
    [MemberData(nameof(EvaluationCases))]
    public void Evaluation_uses_the_running_statistics(CePath path, long samples)
    {
        using var ce = new ChannelEquilibrium(8, groupSize: 4, dtype: float64).On(path);
        var state = ce.state_dict();
        var map = randn(new long[] { 2, 4, 4 }, dtype: float64, generator: new Generator(2));
        using (no_grad())
        {
            state["running_wm"].copy_(map);
            state["running_mean"].fill_(5.0);
            state["AR.running_scale"].fill_(2.5);
            state["x_weight"].fill_(0.3);
        }
        ce.eval();
        var x = Input(3, n: samples);

        Tensor output;
        using (no_grad())
            output = ce.call(x);

        ce.AssertRanOn(path);
        double lambda = 1 / (1 + Math.Exp(-0.3));
        var gate = ReferenceMath.Gate(ReferenceMath.InstanceVariance(x), ReferenceMath.Under(state, "AR."));
        var expected = lambda * ReferenceMath.ApplyPerGroup(map, x) + (1 - lambda) * (gate / 2.5).view(samples, 8, 1, 1) * x;
        Assert.True(output.allclose(expected, rtol: 1e-10, atol: 1e-10));

        // The output follows the buffers, and evaluation leaves them alone.
        using (no_grad())
            state["AR.running_scale"].fill_(5.0);
        var halvedGate = ce.call(x) - lambda * ReferenceMath.ApplyPerGroup(map, x);
        Assert.True(halvedGate.allclose(0.5 * (expected - lambda * ReferenceMath.ApplyPerGroup(map, x)), rtol: 1e-10, atol: 1e-12));
        Assert.True(state["running_wm"].allclose(map, rtol: 0, atol: 0));
        Assert.Equal(5.0, state["running_mean"].mean().item<double>());
    }

    [Theory]
    [MemberData(nameof(CePaths.Both), MemberType = typeof(CePaths))]
    public void Training_output_does_not_depend_on_the_running_statistics(CePath path)
    {
        using var ce = new ChannelEquilibrium(8, groupSize: 4, dtype: float64).On(path);
        var x = Input(4);
        var first = ce.call(x);
        using (no_grad())
        {
            var state = ce.state_dict();
            state["running_wm"].copy_(randn(new long[] { 2, 4, 4 }, dtype: float64, generator: new Generator(6)));
            state["running_mean"].fill_(4.0);
            state["AR.running_scale"].fill_(123.0);
        }
        Assert.True(ce.call(x).allclose(first, rtol: 0, atol: 0));
    }

    [Fact]
    public void Pooling_changes_only_the_decorrelation_statistics()
    {
        var x = Input(5, h: 6, w: 8) * 0.01;
        using var ce = new ChannelEquilibrium(8, groupSize: 4, pool: true, dtype: float64);

        var output = ce.call(x);

        ce.AssertRanOn(CePath.Operators); // the kernels do not pool
        Assert.True(output.allclose(ExpectedTraining(ce, x, groupSize: 4, pool: true), rtol: 1e-10, atol: 1e-12));
        var (_, wm) = ReferenceMath.Decorrelation(x, groupSize: 4, pool: true);
        Assert.True(ce.state_dict()["running_wm"].allclose(0.9 * eye(4, dtype: float64) + 0.1 * wm, rtol: 1e-10, atol: 1e-12));
    }

    [Theory]
    [InlineData(false, CePath.Kernels)]
    [InlineData(false, CePath.Operators)]
    [InlineData(true, CePath.Operators)]
    public void Steps_leave_no_live_tensors_behind(bool pool, CePath path)
    {
        using var ce = new ChannelEquilibrium(8, groupSize: 4, pool: pool).On(path);
        var x = Input(7).to(float32).requires_grad_();
        void Step()
        {
            // No dispose scope here: anything the module forgets to dispose stays alive and counts.
            using var output = ce.call(x);
            using var squared = output.square();
            using var loss = squared.sum();
            loss.backward();
        }
        Step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++)
            Step();
        ce.AssertRanOn(path);
        ce.eval();
        Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void State_dict_has_the_reference_names_and_shapes()
    {
        using var ce = new ChannelEquilibrium(64);
        var shapes = ce.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.shape);
        var expected = new Dictionary<string, long[]>
        {
            ["x_weight"] = [1],
            ["running_mean"] = [4, 16, 1],
            ["running_wm"] = [4, 16, 16],
            ["AR.running_scale"] = [1],
            ["AR.fc.0.weight"] = [16, 64],
            ["AR.fc.1.weight"] = [16],
            ["AR.fc.1.bias"] = [16],
            ["AR.fc.3.weight"] = [64, 16],
        };
        Assert.Equal(expected.Keys.Order(), shapes.Keys.Order());
        foreach (var (name, shape) in expected)
            Assert.Equal(shape, shapes[name]);

        var state = ce.state_dict();
        Assert.True(state["running_wm"].allclose(eye(16).repeat(4, 1, 1), rtol: 0, atol: 0));
        Assert.Equal(0f, state["running_mean"].abs().sum().item<float>());
        Assert.Equal(0f, state["AR.running_scale"].item<float>());
        Assert.Equal(
            new[] { "AR.fc.0.weight", "AR.fc.1.bias", "AR.fc.1.weight", "AR.fc.3.weight", "x_weight" },
            ce.named_parameters().Select(entry => entry.name).Order());
    }

    [Theory]
    [MemberData(nameof(CePaths.Both), MemberType = typeof(CePaths))]
    public void Float64_works_from_the_constructor_and_through_to(CePath path)
    {
        var x32 = Input(6).to(float32);
        using var ce32 = new ChannelEquilibrium(8, groupSize: 4).On(path);
        using var ce64 = new ChannelEquilibrium(8, groupSize: 4, dtype: float64).On(path);
        Assert.Equal(ScalarType.Float32, ce32.state_dict()["running_wm"].dtype);
        Assert.All(ce64.state_dict().Values, tensor => Assert.Equal(ScalarType.Float64, tensor.dtype));
        using (no_grad())
            foreach (var (name, tensor) in ce32.state_dict())
                ce64.state_dict()[name].copy_(tensor);

        var output32 = ce32.call(x32);
        var output64 = ce64.call(x32.to(float64));
        ce32.AssertRanOn(path);
        ce64.AssertRanOn(path);

        Assert.Equal(ScalarType.Float32, output32.dtype);
        Assert.True(output64.allclose(output32.to(float64), rtol: 1e-4, atol: 1e-5));

        ce32.to(float64);
        Assert.All(ce32.state_dict().Values, tensor => Assert.Equal(ScalarType.Float64, tensor.dtype));
        Assert.Equal(ScalarType.Float64, ce32.call(x32.to(float64)).dtype);
        ce32.AssertRanOn(path);
    }

    /// <summary>TorchSharp 0.107's GroupNorm leaves its affine parameters uninitialized (torch.empty); PyTorch uses 1 and 0.</summary>
    private static Module<Tensor, Tensor> InitializedGroupNorm(long groups, long channels)
    {
        var norm = GroupNorm(groups, channels);
        init.ones_(norm.weight);
        init.zeros_(norm.bias!);
        return norm;
    }

    public static TheoryData<string, CePath> Normalizations()
    {
        var data = new TheoryData<string, CePath>();
        foreach (var kind in new[] { "BN", "GN", "IN", "LN" })
            foreach (var path in new[] { CePath.Kernels, CePath.Operators })
                data.Add(kind, path);
        return data;
    }

    [Theory]
    [MemberData(nameof(Normalizations))]
    public void Works_after_every_normalization_kind(string kind, CePath path)
    {
        const long c = 16, h = 7, w = 7;
        Module<Tensor, Tensor> norm = kind switch
        {
            "BN" => BatchNorm2d(c),
            "GN" => InitializedGroupNorm(4, c),
            "IN" => InstanceNorm2d(c, affine: true),
            _ => LayerNorm(new long[] { c, h, w }),
        };
        var ce = new ChannelEquilibrium(c, groupSize: 8).On(path);
        using var block = Sequential(("norm", norm), ("ce", ce));
        var x = randn(new long[] { 6, c, h, w }, generator: new Generator((ulong)kind.Length)) * 3 + 1;

        var output = block.call(x);
        output.square().sum().backward();
        ce.AssertRanOn(path);

        Assert.Equal(x.shape, output.shape);
        Assert.True(output.isfinite().all().item<bool>());
        var normWeight = norm.parameters().First();
        Assert.NotNull(normWeight.grad);
        Assert.True(normWeight.grad!.isfinite().all().item<bool>());
        Assert.True(normWeight.grad!.abs().sum().item<float>() > 0);
        var state = block.state_dict();
        Assert.False(state["ce.running_wm"].allclose(eye(8).repeat(2, 1, 1)));
        Assert.True(state["ce.AR.running_scale"].item<float>() > 0);

        block.eval();
        using (no_grad())
        {
            var evaluated = block.call(x);
            Assert.True(evaluated.isfinite().all().item<bool>());
        }
    }
}
