using CeDsl.Selective;
using TorchSharp;
using TorchSharp.Modules;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

public class SelectiveConv2dTests
{
    // The keys the released PyTorch SelectiveConv2d registers (selective_convolution.py): _ind_ptr, _bias
    // and _eye only when K > 0; BatchNorm2d adds num_batches_tracked since PyTorch 0.4.1.
    private static readonly string[] CommonKeys =
        ["norm.weight", "norm.bias", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked", "conv.weight", "is_open"];

    [Fact]
    public void State_dict_uses_the_reference_names_and_types_when_K_is_positive()
    {
        using var layer = new SelectiveConv2d(6, 4, kernelSize: 1, k: 3, dtype: ScalarType.Float64);
        var state = layer.state_dict();

        Assert.Equal(CommonKeys.Concat(["_ind_ptr", "_bias", "_eye"]).Order(), state.Keys.Order());
        Assert.Equal(ScalarType.Int64, state["_ind_ptr"].dtype);
        Assert.Equal(new long[] { 6 }, state["_ind_ptr"].shape);
        Assert.All(Longs(state["_ind_ptr"]), p => Assert.Equal(-1L, p));
        Assert.Equal(new long[] { 6, 2 }, state["_bias"].shape);
        Assert.Equal(ScalarType.Float64, state["_bias"].dtype);
        Assert.All(Values(state["is_open"]), v => Assert.Equal(1.0, v));
        Assert.Equal(ScalarType.Float64, state["is_open"].dtype);
        Assert.Equal(new double[] { 1, 0, 0, 0, 1, 0 }, Values(state["_eye"]));
        Assert.Equal(ScalarType.Int64, state["norm.num_batches_tracked"].dtype);
        Assert.Equal(new long[] { 4, 6, 1, 1 }, state["conv.weight"].shape);
        Assert.Contains(layer.named_parameters(), p => p.name == "_bias");
        Assert.DoesNotContain(layer.named_parameters(), p => p.name == "conv.bias");
    }

    [Fact]
    public void State_dict_of_a_pruning_only_layer_has_no_shift_state()
    {
        using var layer = new SelectiveConv2d(6, 4, kernelSize: 3, k: 0);
        Assert.Equal(CommonKeys.Order(), layer.state_dict().Keys.Order());
        Assert.All(layer.CopySources(), p => Assert.Equal(-1L, p));
    }

    [Fact]
    public void State_dict_round_trips_through_save_and_strict_load()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        using var original = new SelectiveConv2d(6, 4, kernelSize: 3, k: 2);
        RandomizeState(original, generator);
        original.Dealloc();
        original.Realloc(new Random(1));
        string path = Path.Combine(Path.GetTempPath(), $"selectconv-{Guid.NewGuid():N}.dat");
        try
        {
            original.save(path);
            using var restored = new SelectiveConv2d(6, 4, kernelSize: 3, k: 2);
            restored.load(path, strict: true);
            foreach (var (key, value) in original.state_dict())
                Assert.Equal(Values(value), Values(restored.state_dict()[key]));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Forward_with_all_gates_open_is_BN_ReLU_conv()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        using var layer = new SelectiveConv2d(5, 3, kernelSize: 3, stride: 2, k: 3, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        layer.eval();
        var input = randn(new long[] { 2, 5, 9, 9 }, ScalarType.Float64, generator: generator);

        var expected = nn.functional.conv2d(
            nn.functional.batch_norm(input, State(layer, "norm.running_mean"), State(layer, "norm.running_var"),
                State(layer, "norm.weight"), State(layer, "norm.bias"), training: false).relu(),
            State(layer, "conv.weight"), strides: new long[] { 2, 2 }, padding: new long[] { 1, 1 });

        var actual = layer.call(input);
        Assert.Equal(new long[] { 2, 3, 5, 5 }, actual.shape);
        Assert.True(actual.allclose(expected, rtol: 1e-10, atol: 1e-10));
    }

    [Fact]
    public void Closed_gates_silence_their_channels()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(12);
        using var layer = new SelectiveConv2d(4, 2, kernelSize: 1, k: 0, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        layer.eval();
        var input = randn(new long[] { 3, 4, 5, 5 }, ScalarType.Float64, generator: generator);
        Assign(layer, "is_open", new double[] { 1, 0, 1, 0 });
        var gated = layer.call(input);

        Assign(layer, "is_open", new double[] { 1, 1, 1, 1 });
        var weight = State(layer, "conv.weight");
        using (no_grad())
        {
            weight.narrow(1, 1, 1).zero_();
            weight.narrow(1, 3, 1).zero_();
        }
        Assert.True(gated.allclose(layer.call(input), rtol: 1e-12, atol: 1e-12));
    }

    [Fact]
    public void Dropout_is_applied_only_in_training()
    {
        using var scope = NewDisposeScope();
        using var layer = new SelectiveConv2d(4, 2, kernelSize: 1, dropout: 0.5, k: 0);
        Assert.Contains(layer.named_children(), c => c.name == "drop");
        var input = randn(2, 4, 6, 6);
        layer.eval();
        var first = layer.call(input);
        Assert.True(first.allclose(layer.call(input), rtol: 0, atol: 0));
        layer.train();
        Assert.False(layer.call(input).allclose(layer.call(input), rtol: 0, atol: 0));
    }

    [Theory]
    [InlineData(0, 4, 1, "inChannels")]
    [InlineData(4, 4, 1, "gamma")]
    [InlineData(4, 4, 5, "K must be in [0, inChannels = 4]")]
    public void Bad_hyper_parameters_are_rejected_with_the_module_name(long inChannels, long outChannels, int k, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() =>
            new SelectiveConv2d(inChannels, outChannels, 1, gamma: expected == "gamma" ? 1.0 : 0.001, k: k));
        Assert.Contains("SelectiveConv2d", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Wrong_input_width_is_rejected_with_the_module_name()
    {
        using var layer = new SelectiveConv2d(4, 2, kernelSize: 3);
        using var input = zeros(1, 3, 5, 5);
        var error = Assert.Throws<ArgumentException>(() => layer.call(input));
        Assert.Contains("SelectiveConv2d(4 -> 2, k=3)", error.Message);
        Assert.Contains("[1, 3, 5, 5]", error.Message);
    }

    [Fact]
    public void Weight_decay_groups_give_the_shifts_1e_5_and_everything_else_the_base_decay()
    {
        using var scope = NewDisposeScope();
        using var model = nn.Sequential(
            ("sconv1", new SelectiveConv2d(4, 8, 1, k: 3)),
            ("sconv2", new SelectiveConv2d(8, 8, 3, k: 0)),
            ("head", nn.Conv2d(8, 2, 1)));

        var groups = SelectiveConv2d.WeightDecayGroups(model, 1e-4);

        Assert.Equal(2, groups.Count);
        var shiftGroup = Assert.Single(groups, g => g.WeightDecay == SelectiveConv2d.ShiftWeightDecay);
        Assert.Equal(1e-5, shiftGroup.WeightDecay);
        var shift = Assert.Single(shiftGroup.Parameters);
        Assert.Equal(State(model, "sconv1._bias").Handle, shift.Handle);
        var baseGroup = Assert.Single(groups, g => g.WeightDecay == 1e-4);
        Assert.Equal(model.parameters().Count() - 1, baseGroup.Parameters.Count);
        Assert.DoesNotContain(baseGroup.Parameters, p => p.Handle == shift.Handle);

        using var optimizer = optim.SGD(
            groups.Select(g => new SGD.ParamGroup(g.Parameters, lr: 0.1, momentum: 0.9, weight_decay: g.WeightDecay, nesterov: true)),
            learningRate: 0.1);
        Assert.Equal(2, optimizer.ParamGroups.Count());
    }
}
