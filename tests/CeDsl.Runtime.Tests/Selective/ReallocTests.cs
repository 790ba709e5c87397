using CeDsl.Selective;
using TorchSharp;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

public class ReallocTests
{
    private static readonly string[] CopiedBatchNormState = ["norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"];

    /// <summary>Column L2 norms of the normalised ECDM, computed with plain loops from the layer's state.</summary>
    private static double[] ScoresOf(SelectiveConv2d layer)
    {
        int outputs = (int)layer.OutChannels, inputs = (int)layer.InChannels;
        double[,] normalized = NormalizeByLoops(EcdmByLoops(Values(State(layer, "norm.weight")), Values(State(layer, "norm.bias")),
            Values(State(layer, "conv.weight")), outputs, inputs, (int)(layer.KernelSize * layer.KernelSize),
            Values(State(layer, "is_open"))));
        var scores = new double[inputs];
        for (int i = 0; i < inputs; i++)
        {
            for (int o = 0; o < outputs; o++)
                scores[i] += normalized[o, i] * normalized[o, i];
            scores[i] = Math.Sqrt(scores[i]);
        }
        return scores;
    }

    private static long[] TopOpen(double[] scores, bool[] open, int k) =>
        Enumerable.Range(0, scores.Length).Where(i => open[i]).OrderByDescending(i => scores[i]).ThenBy(i => i)
            .Take(k).Select(i => (long)i).ToArray();

    private static void Close(SelectiveConv2d layer, params int[] channels)
    {
        double[] gate = Values(State(layer, "is_open"));
        long[] pointers = Longs(State(layer, "_ind_ptr"));
        foreach (int channel in channels)
        {
            gate[channel] = 0;
            pointers[channel] = -1;
        }
        Assign(layer, "is_open", gate);
        Assign(layer, "_ind_ptr", tensor(pointers));
    }

    [Fact]
    public void Realloc_fills_every_released_slot_without_changing_the_output()
    {
        const int inputs = 16;
        using var scope = NewDisposeScope();
        var generator = new Generator(4242);
        using var layer = new SelectiveConv2d(inputs, 5, kernelSize: 3, gamma: 0.05, k: 3, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        layer.Norm.momentum = 0;   // train-mode forwards below must not move the running statistics
        var dealloc = layer.Dealloc();
        Assert.True(dealloc.NewlyClosed.Count >= 3);
        bool[] openBefore = layer.OpenMask();
        long[] expectedCandidates = TopOpen(ScoresOf(layer), openBefore, 3);
        var stateBefore = layer.state_dict().ToDictionary(kv => kv.Key, kv => Values(kv.Value));
        var input = randn(new long[] { 4, inputs, 8, 8 }, ScalarType.Float64, generator: generator);
        layer.eval();
        var evalBefore = layer.call(input);
        layer.train();
        var trainBefore = layer.call(input);

        var result = layer.Realloc(new Random(17));

        layer.eval();
        Assert.True(evalBefore.allclose(layer.call(input), rtol: 0, atol: 1e-12), "eval-mode output changed");
        layer.train();
        Assert.True(trainBefore.allclose(layer.call(input), rtol: 0, atol: 1e-12), "train-mode output changed");

        Assert.Equal(expectedCandidates, result.Candidates);
        Assert.Equal(dealloc.NewlyClosed, result.Copies.Select(c => c.Slot));
        Assert.All(layer.OpenMask(), Assert.True);
        var after = layer.state_dict().ToDictionary(kv => kv.Key, kv => Values(kv.Value));
        long[] pointers = layer.CopySources();
        double[] convBefore = stateBefore["conv.weight"], convAfter = after["conv.weight"];
        int outputs = 5, kernelArea = 9;
        foreach (var copy in result.Copies)
        {
            Assert.Contains(copy.Source, expectedCandidates);
            Assert.Equal(copy.Source, copy.Root);
            Assert.Equal(copy.Root, pointers[copy.Slot]);
            foreach (string key in CopiedBatchNormState)
                Assert.Equal(stateBefore[key][copy.Source], after[key][copy.Slot]);
            Assert.InRange(copy.ShiftX, -1.5, 1.5);
            Assert.InRange(copy.ShiftY, -1.5, 1.5);
            Assert.Equal(copy.ShiftX, after["_bias"][2 * copy.Slot], 12);
            Assert.Equal(copy.ShiftY, after["_bias"][2 * copy.Slot + 1], 12);
        }
        var slots = result.Copies.Select(c => (int)c.Slot).ToHashSet();
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < inputs; i++)
                for (int k = 0; k < kernelArea; k++)
                {
                    int at = (o * inputs + i) * kernelArea + k;
                    Assert.Equal(slots.Contains(i) ? 0 : convBefore[at], convAfter[at]);
                }
        for (int i = 0; i < inputs; i++)
            if (!slots.Contains(i))
            {
                foreach (string key in CopiedBatchNormState)
                    Assert.Equal(stateBefore[key][i], after[key][i]);
                Assert.Equal(-1, pointers[i]);
            }
    }

    [Fact]
    public void Copy_of_a_copy_takes_the_copys_BN_state_but_points_at_the_root()
    {
        const int inputs = 8;
        using var scope = NewDisposeScope();
        var generator = new Generator(55);
        using var layer = new SelectiveConv2d(inputs, 3, kernelSize: 1, k: 1, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        Close(layer, 7);
        long root = TopOpen(ScoresOf(layer), layer.OpenMask(), 1)[0];

        var first = layer.Realloc(new Random(1));
        Assert.Equal(new ChannelCopy(7, root, root, first.Copies[0].ShiftX, first.Copies[0].ShiftY), Assert.Single(first.Copies));

        // Training moves the copy on: it becomes the most important channel and its BN drifts from the root's.
        var weight = State(layer, "conv.weight");
        using (no_grad())
            weight.narrow(1, 7, 1).fill_(50.0);
        var bias = Values(State(layer, "norm.bias"));
        bias[7] = bias[root] + 0.25;
        Assign(layer, "norm.bias", bias);
        Close(layer, 2 == root ? 3 : 2);
        long slot = 2 == root ? 3 : 2;
        Assert.Equal(new long[] { 7 }, TopOpen(ScoresOf(layer), layer.OpenMask(), 1));
        var copyState = CopiedBatchNormState.ToDictionary(key => key, key => Values(State(layer, key))[7]);

        var second = layer.Realloc(new Random(2));

        var copy = Assert.Single(second.Copies);
        Assert.Equal(slot, copy.Slot);
        Assert.Equal(7, copy.Source);
        Assert.Equal(root, copy.Root);
        Assert.Equal(root, layer.CopySources()[slot]);
        Assert.Equal(root, layer.CopySources()[7]);
        foreach (string key in CopiedBatchNormState)
            Assert.Equal(copyState[key], Values(State(layer, key))[slot]);
        Assert.NotEqual(Values(State(layer, "norm.bias"))[root], Values(State(layer, "norm.bias"))[slot]);
    }

    [Theory]
    [InlineData(1, false)]   // channel 0 has 2 copies > 1: it and its copies score 0
    [InlineData(2, true)]    // 2 copies is not more than 2: still a candidate
    public void N_max_excludes_sources_with_more_copies_than_the_cap(int nMax, bool sourceStaysCandidate)
    {
        const int inputs = 8;
        using var scope = NewDisposeScope();
        var generator = new Generator(66);
        using var layer = new SelectiveConv2d(inputs, 3, kernelSize: 1, k: 2, nMax: nMax, dtype: ScalarType.Float64);
        RandomizeState(layer, generator);
        Assign(layer, "_ind_ptr", tensor(new long[] { -1, 0, 0, -1, -1, -1, -1, -1 }));
        Close(layer, 6, 7);
        var weight = State(layer, "conv.weight");
        using (no_grad())
            weight.narrow(1, 0, 3).fill_(30.0);   // channel 0 and its copies 1, 2 dominate every output
        double[] g = Values(State(layer, "norm.weight")), b = Values(State(layer, "norm.bias"));
        (g[0], g[1], g[2], b[0], b[1], b[2]) = (1, 1, 1, 2, 1.5, 1);   // ... in this order
        Assign(layer, "norm.weight", g);
        Assign(layer, "norm.bias", b);
        double[] scores = ScoresOf(layer);
        bool[] open = layer.OpenMask();
        Assert.Equal(new long[] { 0, 1 }, TopOpen(scores, open, 2));
        if (!sourceStaysCandidate)
            scores[0] = scores[1] = scores[2] = 0;

        var result = layer.Realloc(new Random(3));

        Assert.Equal(TopOpen(scores, open, 2), result.Candidates);
        Assert.Equal(sourceStaysCandidate, result.Candidates.Contains(0));
        Assert.Equal(new long[] { 6, 7 }, result.Copies.Select(c => c.Slot));
    }

    [Fact]
    public void Each_slot_picks_a_candidate_uniformly_and_a_uniform_shift()
    {
        const int inputs = 200, slots = 150, k = 3;
        using var scope = NewDisposeScope();
        var generator = new Generator(9);
        using var layer = new SelectiveConv2d(inputs, 4, kernelSize: 1, k: k);
        RandomizeState(layer, generator);
        Close(layer, Enumerable.Range(inputs - slots, slots).ToArray());

        var result = layer.Realloc(new Random(123));

        Assert.Equal(slots, result.Copies.Count);
        // Binomial(150, 1/3): mean 50, standard deviation 5.8.
        foreach (long candidate in result.Candidates)
            Assert.InRange(result.Copies.Count(c => c.Source == candidate), 50 - 4 * 5.8, 50 + 4 * 5.8);
        double[] shifts = result.Copies.SelectMany(c => new[] { c.ShiftX, c.ShiftY }).ToArray();
        Assert.All(shifts, s => Assert.InRange(s, -1.5, 1.5));
        double mean = shifts.Average();
        double variance = shifts.Select(s => (s - mean) * (s - mean)).Average();
        Assert.InRange(mean, -4 * Math.Sqrt(0.75 / shifts.Length), 4 * Math.Sqrt(0.75 / shifts.Length));
        Assert.InRange(variance, 0.6, 0.9);   // uniform on [-1.5, 1.5]: 3^2 / 12 = 0.75
    }

    [Fact]
    public void Pruning_only_layer_never_reallocates()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(10);
        using var layer = new SelectiveConv2d(12, 4, kernelSize: 3, gamma: 0.05, k: 0);
        RandomizeState(layer, generator);
        var dealloc = layer.Dealloc();
        Assert.NotEmpty(dealloc.NewlyClosed);

        var result = layer.Realloc(new Random(1));

        Assert.Empty(result.Copies);
        Assert.Equal(12 - dealloc.NewlyClosed.Count, layer.OpenChannelCount);
    }

    [Fact]
    public void Same_random_seed_gives_the_same_reallocation()
    {
        using var scope = NewDisposeScope();
        ReallocResult Run()
        {
            using var layer = new SelectiveConv2d(16, 4, kernelSize: 1, gamma: 0.05, k: 3);
            RandomizeState(layer, new Generator(21));
            layer.Dealloc();
            return layer.Realloc(new Random(5));
        }
        var first = Run();
        var second = Run();
        Assert.NotEmpty(first.Copies);
        Assert.Equal(first.Copies, second.Copies);
    }
}
