using CeDsl.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Training.Tests.Analysis;

/// <summary>Small networks and data for the analysis tests; all weights come from local generators.</summary>
internal static class AnalysisNetworks
{
    /// <summary>conv1 bn1 relu1 conv2 bn2 relu2 pool flatten fc: a 4-class classifier of 1x8x8 images.</summary>
    public static Sequential Classifier(ulong seed, int width = 8)
    {
        var model = Sequential(
            ("conv1", Conv2d(1, width, 3, padding: 1, bias: false)),
            ("bn1", BatchNorm2d(width)),
            ("relu1", ReLU()),
            ("conv2", Conv2d(width, width, 3, padding: 1, bias: false)),
            ("bn2", BatchNorm2d(width)),
            ("relu2", ReLU()),
            ("pool", AdaptiveAvgPool2d(1)),
            ("flatten", Flatten()),
            ("fc", Linear(width, 4)));
        Randomize(model, seed);
        return model;
    }

    /// <summary>Fills every parameter and BN statistic of <paramref name="model"/> from a local generator.</summary>
    public static void Randomize(Module model, ulong seed)
    {
        var generator = new Generator(seed);
        using var noGrad = no_grad();
        foreach (var parameter in model.parameters())
            parameter.copy_(randn(parameter.shape, generator: generator) * 0.5);
        foreach (var norm in model.modules().OfType<BatchNorm2d>())
            norm.weight.add_(1);
        foreach (var (name, buffer) in model.named_buffers())
        {
            if (name.EndsWith("running_mean"))
                buffer.copy_(randn(buffer.shape, generator: generator) * 0.1);
            else if (name.EndsWith("running_var"))
                buffer.copy_(rand(buffer.shape, generator: generator) + 0.5);
        }
    }

    /// <summary>Sets the gamma and beta of a BatchNorm2d.</summary>
    public static void SetAffine(BatchNorm2d norm, float[] gamma, float[] beta)
    {
        using var noGrad = no_grad();
        norm.weight.copy_(tensor(gamma));
        norm.bias!.copy_(tensor(beta));
    }

    /// <summary>
    /// Random 1x8x8 images labelled by <paramref name="labeller"/>'s own predictions, so that the
    /// unablated network is (nearly) always right and ablation visibly lowers its accuracy.
    /// </summary>
    public static ImageDataset LabelledBy(Module<Tensor, Tensor> labeller, int count, int seed, Normalization normalization)
    {
        var pixels = new byte[count * 64];
        new Random(seed).NextBytes(pixels);
        var unlabelled = new ImageDataset("random", DatasetSplit.Test, "test", false, pixels, count, 1, 8, 8, new byte[count], ["a", "b", "c", "d"]);
        using var loader = Loader(unlabelled, normalization, batchSize: count);
        using var batch = loader.GetBatch(0, 0);
        bool wasTraining = labeller.training;
        labeller.eval();
        byte[] labels;
        using (no_grad())
            labels = labeller.call(batch.Images).argmax(1).to(ScalarType.Byte).data<byte>().ToArray();
        labeller.train(wasTraining);
        unlabelled.Dispose();
        return new ImageDataset("random", DatasetSplit.Test, "test", false, pixels, count, 1, 8, 8, labels, ["a", "b", "c", "d"]);
    }

    public static Normalization Normalization { get; } = new([0.5], [0.29]);

    public static BatchLoader Loader(ImageDataset dataset, Normalization normalization, int batchSize = 16) =>
        new(dataset, new BatchOptions { BatchSize = batchSize, Normalization = normalization });

    /// <summary>Same shape and exactly equal values (0 and -0 are equal; NaN is not).</summary>
    public static bool SameValues(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();

    /// <summary>Copies of every state tensor's bytes, by name.</summary>
    public static Dictionary<string, byte[]> Snapshot(Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.contiguous().bytes.ToArray());
}

/// <summary>Multiplies its input by a constant: a stand-in for an equilibrium module.</summary>
internal sealed class Scale(double factor) : Module<Tensor, Tensor>(nameof(Scale))
{
    public override Tensor forward(Tensor input) => input * factor;
}

/// <summary>BN followed by a functional ReLU, as many hand-written TorchSharp networks do.</summary>
internal sealed class FunctionalReluNet : Module<Tensor, Tensor>
{
    private readonly BatchNorm2d bn;

    public FunctionalReluNet(long channels) : base(nameof(FunctionalReluNet))
    {
        bn = BatchNorm2d(channels, eps: 0);
        RegisterComponents();
    }

    public BatchNorm2d Norm => bn;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return functional.relu(bn.call(input)).MoveToOuterDisposeScope();
    }
}

/// <summary>A residual block registered like torchvision's: one ReLU module used twice.</summary>
internal sealed class SharedReluBlock : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;

    public SharedReluBlock(long channels) : base(nameof(SharedReluBlock))
    {
        conv1 = Conv2d(channels, channels, 3, padding: 1, bias: false);
        bn1 = BatchNorm2d(channels);
        relu = ReLU();
        conv2 = Conv2d(channels, channels, 3, padding: 1, bias: false);
        bn2 = BatchNorm2d(channels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = relu.call(bn1.call(conv1.call(input)));
        x = bn2.call(conv2.call(x));
        return relu.call(x + input).MoveToOuterDisposeScope();
    }
}

/// <summary>Registers a second BN that its forward pass never uses.</summary>
internal sealed class UnusedNormNet : Module<Tensor, Tensor>
{
    private readonly BatchNorm2d bn;
    private readonly BatchNorm2d spare;

    public UnusedNormNet(long channels) : base(nameof(UnusedNormNet))
    {
        bn = BatchNorm2d(channels);
        spare = BatchNorm2d(channels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return functional.relu(bn.call(input)).MoveToOuterDisposeScope();
    }
}
