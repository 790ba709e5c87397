using CeDsl.Layers;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

/// <summary>
/// The trainable CE's kernels give the same bits whatever the number of threads: every sum over blocks, samples or
/// groups runs in a fixed order, whichever thread computes its parts.
/// </summary>
[Collection(SerialCollection.Name)]
public class ChannelEquilibriumThreadTests
{
    [Fact]
    public void A_training_step_gives_the_same_bits_on_one_thread_and_on_four()
    {
        int threads = get_num_threads();
        try
        {
            // 64 groups of 16 channels and 32 samples: enough work that the passes, the gate's products and the sums
            // over samples per group all run in parallel on four threads.
            var steps = new[] { 1, 4 }.Select(count =>
            {
                set_num_threads(count);
                manual_seed(10); // the Linear layers' initial weights
                using var ce = ChannelEquilibriumKernelTests.Randomized(new ChannelEquilibrium(1024, 16, dtype: float64), seed: 10);
                var input = ChannelEquilibriumKernelTests.Input(32, 1024, 7, 7, float64, seed: 11);
                var (output, gradients) = ChannelEquilibriumKernelTests.Step(ce, input);
                Assert.True(ce.RanOnKernels);
                gradients["output"] = output;
                foreach (var (name, value) in ce.state_dict())
                    gradients[name] = value.clone();
                return gradients;
            }).ToList();

            Assert.Equal(steps[0].Keys.Order(), steps[1].Keys.Order());
            var differing = steps[0].Where(entry => !entry.Value.equal(steps[1][entry.Key]).all().item<bool>()).Select(entry => entry.Key).ToList();
            Assert.True(differing.Count == 0, $"differ between one thread and four: {string.Join(", ", differing)}");
        }
        finally
        {
            set_num_threads(threads);
        }
    }
}
