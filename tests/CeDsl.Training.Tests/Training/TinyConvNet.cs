using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Training.Tests.Training;

/// <summary>A small conv net with batch norm and dropout, written like a TorchSharp user would.</summary>
internal sealed class TinyConvNet : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Dropout dropout;
    private readonly Linear fc;

    public TinyConvNet(int width = 8, double dropoutRate = 0.2) : base(nameof(TinyConvNet))
    {
        conv1 = Conv2d(1, width, 3, padding: 1, bias: false);
        bn1 = BatchNorm2d(width);
        conv2 = Conv2d(width, 2 * width, 3, stride: 2, padding: 1, bias: false);
        bn2 = BatchNorm2d(2 * width);
        dropout = Dropout(dropoutRate);
        fc = Linear(2 * width, 10);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = functional.relu(bn1.call(conv1.call(input)));
        x = functional.max_pool2d(x, 2);
        x = functional.relu(bn2.call(conv2.call(x)));
        x = functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return fc.call(dropout.call(x)).MoveToOuterDisposeScope();
    }

    /// <summary>A model initialised from a given torch seed.</summary>
    public static TinyConvNet Create(long seed, int width = 8)
    {
        torch.random.manual_seed(seed);
        return new TinyConvNet(width);
    }

    /// <summary>Copies of every state tensor's bytes, by name.</summary>
    public static Dictionary<string, byte[]> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.contiguous().bytes.ToArray());
}
