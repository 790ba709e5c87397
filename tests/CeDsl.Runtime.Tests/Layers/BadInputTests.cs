using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Runtime.Tests.Layers;

public class BadInputTests
{
    private const long Channels = 8;

    /// <summary>The modules, CE on both of its paths (<see cref="CePath"/>).</summary>
    public static TheoryData<string> Modules => new()
    {
        "ChannelEquilibrium", OperatorsOnly, "BatchDecorrelation", "AdaptiveInstanceInverse", "SqueezeExcitation",
    };

    /// <summary>CE computing with libtorch's operators only.</summary>
    private const string OperatorsOnly = "ChannelEquilibrium on operators";

    private static Module<Tensor, Tensor> Create(string name, bool pool = false) => name switch
    {
        "ChannelEquilibrium" => new ChannelEquilibrium(Channels, groupSize: 4, pool: pool),
        OperatorsOnly => new ChannelEquilibrium(Channels, groupSize: 4, pool: pool).On(CePath.Operators),
        "BatchDecorrelation" => new BatchDecorrelation(Channels, groupSize: 4, pool: pool),
        "AdaptiveInstanceInverse" => new AdaptiveInstanceInverse(Channels),
        _ => new SqueezeExcitation(Channels, reduction: 4),
    };

    private static Tensor Valid(long h = 4, long w = 4) => randn(new long[] { 2, Channels, h, w }, generator: new Generator(1));

    private static void AssertMessage(Exception exception, string module, params string[] fragments)
    {
        Assert.StartsWith((module == OperatorsOnly ? "ChannelEquilibrium" : module) + ":", exception.Message);
        foreach (var fragment in fragments)
            Assert.Contains(fragment, exception.Message);
    }

    [Theory]
    [MemberData(nameof(Modules))]
    public void Wrong_rank(string name)
    {
        using var module = Create(name);
        var error = Assert.Throws<ArgumentException>(() => module.call(randn(2, Channels, 16)));
        AssertMessage(error, name, "4-D", "3-D", "[2, 8, 16]");
    }

    [Theory]
    [MemberData(nameof(Modules))]
    public void Channel_count_mismatch(string name)
    {
        using var module = Create(name);
        var error = Assert.Throws<ArgumentException>(() => module.call(randn(2, 6, 4, 4)));
        AssertMessage(error, name, "channel count mismatch", "8 channels", "has 6");
    }

    [Theory]
    [MemberData(nameof(Modules))]
    public void Element_type_mismatch(string name)
    {
        using var module = Create(name);
        var error = Assert.Throws<ArgumentException>(() => module.call(Valid().to(float64)));
        AssertMessage(error, name, "element type mismatch", "Float32", "Float64");
    }

    [Theory]
    [InlineData("ChannelEquilibrium")]
    [InlineData(OperatorsOnly)]
    [InlineData("AdaptiveInstanceInverse")]
    public void One_position_has_no_instance_variance(string name)
    {
        using var module = Create(name);
        var error = Assert.Throws<ArgumentException>(() => module.call(randn(4, Channels, 1, 1)));
        AssertMessage(error, name, "H*W = 1", "undefined");
        module.eval();
        Assert.Throws<ArgumentException>(() => module.call(randn(4, Channels, 1, 1)));
    }

    [Theory]
    [InlineData("ChannelEquilibrium")]
    [InlineData("BatchDecorrelation")]
    public void Pooling_needs_two_rows_and_columns(string name)
    {
        using var module = Create(name, pool: true);
        var error = Assert.Throws<ArgumentException>(() => module.call(randn(4, Channels, 1, 6)));
        AssertMessage(error, name, "max-pooling", "H >= 2");
    }

    [Theory]
    [InlineData("ChannelEquilibrium")]
    [InlineData(OperatorsOnly)]
    [InlineData("AdaptiveInstanceInverse")]
    public void Evaluation_before_any_training_step(string name)
    {
        using var module = Create(name);
        module.eval();
        var error = Assert.Throws<InvalidOperationException>(() => module.call(Valid()));
        AssertMessage(error, name, "before any training step", "running_scale is 0");

        module.train();
        using (no_grad())
            module.call(Valid());
        module.eval();
        Assert.True(module.call(Valid()).isfinite().all().item<bool>());
    }

    public static TheoryData<string, bool, double> NonFinite()
    {
        var data = new TheoryData<string, bool, double>();
        foreach (var name in Modules)
            foreach (bool training in new[] { true, false })
                foreach (double value in new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity })
                    data.Add(name, training, value);
        return data;
    }

    [Theory]
    [MemberData(nameof(NonFinite))]
    public void Non_finite_values_throw_and_leave_the_running_statistics_alone(string name, bool training, double value)
    {
        using var module = Create(name);
        using (no_grad())
            module.call(Valid());                        // one training step, so that evaluation is allowed
        var before = module.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.clone());
        module.train(training);
        var x = Valid();
        x[1, 5, 2, 3] = tensor(value, dtype: float32);

        var error = Assert.Throws<ArgumentException>(() => module.call(x));

        AssertMessage(error, name, "NaN or infinite");
        foreach (var (key, tensor) in module.state_dict())
            Assert.True(tensor.allclose(before[key], rtol: 0, atol: 0), $"{key} changed by a rejected call");
    }

    [Theory]
    [MemberData(nameof(CePaths.Both), MemberType = typeof(CePaths))]
    public void Constant_input_gives_a_zero_scale_and_is_rejected(CePath path)
    {
        using var ce = new ChannelEquilibrium(Channels, groupSize: 4).On(path);
        var error = Assert.Throws<ArgumentException>(() => ce.call(ones(2, Channels, 4, 4)));
        AssertMessage(error, "ChannelEquilibrium", "constant", "s is 0");
        Assert.Equal(0f, ce.state_dict()["AR.running_scale"].item<float>());
    }

    [Fact]
    public void Bad_constructor_arguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelEquilibrium(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelEquilibrium(8, groupSize: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelEquilibrium(8, iterations: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelEquilibrium(8, eps: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelEquilibrium(8, momentum: 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelEquilibrium(3, reduction: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchDecorrelation(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveInstanceInverse(8, reduction: 0));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new SqueezeExcitation(8));
        Assert.Contains("SqueezeExcitation", error.Message);
    }
}
