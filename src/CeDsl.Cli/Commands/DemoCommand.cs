using System.CommandLine;
using System.Globalization;
using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Cli.Commands;

/// <summary>
/// Trains a two-layer CE network for a few steps on a synthetic task (which quadrant of a noisy
/// image holds a bright blob) and reports what CE did: loss, accuracy, the mixing weight lambda
/// and the running statistics that evaluation uses.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var steps = CliOptions.Integer("--steps", "Training steps.", 60, 1, "must be positive");
        var batch = CliOptions.Integer("--batch", "Images per step.", 32, 2, "must be at least 2 (CE estimates batch statistics)");
        var seed = CliOptions.Integer("--seed", "Random seed.", 1, 0, "must not be negative");
        var command = new Command("demo", "Train a small CE network on synthetic images and show what CE does.")
        {
            steps, batch, seed,
        };
        CommandAction.Set(command, (parse, output) => Run(parse.GetValue(steps), parse.GetValue(batch), parse.GetValue(seed), output.Output));
        return command;
    }

    internal static int Run(int steps, int batchSize, int seed, TextWriter output)
    {
        torch.manual_seed(seed);
        var random = new Random(seed);
        using var model = nn.Sequential(
            ("conv1", nn.Conv2d(1, 16, 3, padding: 1, bias: false)),
            ("bn1", nn.BatchNorm2d(16)),
            ("ce1", new ChannelEquilibrium(16, groupSize: 8)),
            ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(16, 32, 3, stride: 2, padding: 1, bias: false)),
            ("bn2", nn.BatchNorm2d(32)),
            ("ce2", new ChannelEquilibrium(32)),
            ("relu2", nn.ReLU()),
            ("pool", nn.AdaptiveAvgPool2d(2)),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(32 * 2 * 2, 4)));
        using var optimizer = optim.SGD(model.parameters(), 0.05, momentum: 0.9, weight_decay: 1e-4);

        output.WriteLine($"CeDsl demo: conv-BN-CE-ReLU x2 on 16x16 synthetic images, {steps} steps of {batchSize}, seed {seed}");
        output.WriteLine(Invariant($"{"step",5} {"loss",8} {"acc",6} {"lambda1",8} {"lambda2",8}"));
        model.train();
        for (int step = 1; step <= steps; step++)
        {
            using var scope = NewDisposeScope();
            var (images, labels) = Quadrants(batchSize, random);
            var logits = model.call(images);
            var loss = nn.functional.cross_entropy(logits, labels);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            if (step == 1 || step % 10 == 0 || step == steps)
            {
                double accuracy = logits.argmax(1).eq(labels).to(ScalarType.Float32).mean().item<float>();
                output.WriteLine(Invariant(
                    $"{step,5} {loss.item<float>(),8:F4} {accuracy,6:P0} {Lambda(model, "ce1"),8:F4} {Lambda(model, "ce2"),8:F4}"));
            }
        }

        model.eval();
        using (no_grad())
        using (NewDisposeScope())
        {
            var (images, labels) = Quadrants(512, random);
            double accuracy = model.call(images).argmax(1).eq(labels).to(ScalarType.Float32).mean().item<float>();
            output.WriteLine(Invariant($"eval on 512 fresh images (running statistics): accuracy {accuracy:P1}"));
        }

        output.WriteLine("CE state of ce2 (PyTorch names):");
        foreach (var (name, tensor) in model.state_dict().Where(p => p.Key.StartsWith("ce2.", StringComparison.Ordinal)))
            output.WriteLine($"  {name,-22} [{string.Join(", ", tensor.shape)}]");
        return 0;
    }

    private static double Lambda(nn.Module<Tensor, Tensor> model, string name)
    {
        var xWeight = model.state_dict()[$"{name}.x_weight"];
        return torch.sigmoid(xWeight).item<float>();
    }

    /// <summary>Noise images with a bright 4x4 blob in one of four quadrants; the label is the quadrant.</summary>
    private static (Tensor Images, Tensor Labels) Quadrants(int count, Random random)
    {
        var images = randn(count, 1, 16, 16) * 0.5;
        var labels = new long[count];
        for (int i = 0; i < count; i++)
        {
            int quadrant = random.Next(4);
            labels[i] = quadrant;
            int top = (quadrant / 2) * 8 + random.Next(5), left = (quadrant % 2) * 8 + random.Next(5);
            images[i, 0, TensorIndex.Slice(top, top + 4), TensorIndex.Slice(left, left + 4)].add_(1.5);
        }
        return (images, tensor(labels));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
