using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CeDsl.Generator.Tests.Equivalence;

// The same modules written by hand in TorchSharp, after the PyTorch references (torchvision's
// ResNet Bottleneck/BasicBlock, MobileNetV2 InvertedResidual, ShuffleNetV2 InvertedResidual and
// the CE-ResNet's stem), to compare the generated code against.

internal sealed class HandBottleneck : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1, conv2, conv3;
    private readonly BatchNorm2d bn1, bn2, bn3;
    private readonly ChannelEquilibrium ce;
    private readonly ReLU relu;
    private readonly Sequential? downsample;

    public HandBottleneck(long inplanes, long planes, long stride) : base(nameof(HandBottleneck))
    {
        conv1 = Conv2d(inplanes, planes, 1, bias: false);
        bn1 = BatchNorm2d(planes);
        conv2 = Conv2d(planes, planes, 3, stride: stride, padding: 1, bias: false);
        bn2 = BatchNorm2d(planes);
        conv3 = Conv2d(planes, planes * 4, 1, bias: false);
        bn3 = BatchNorm2d(planes * 4);
        ce = new ChannelEquilibrium(planes * 4, groupSize: 16, reduction: 4);
        relu = ReLU();
        if (stride != 1 || inplanes != planes * 4)
            downsample = Sequential(("0", Conv2d(inplanes, planes * 4, 1, stride: stride, bias: false)), ("1", BatchNorm2d(planes * 4)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = downsample is null ? x : downsample.call(x);
        var outp = relu.call(bn1.call(conv1.call(x)));
        outp = relu.call(bn2.call(conv2.call(outp)));
        outp = ce.call(bn3.call(conv3.call(outp)));
        return relu.call(outp + identity).MoveToOuterDisposeScope();
    }
}

internal sealed class HandInvertedResidual : Module<Tensor, Tensor>
{
    private readonly Sequential conv;
    private readonly bool useResConnect;

    public HandInvertedResidual(long inp, long oup, long stride, long expandRatio) : base(nameof(HandInvertedResidual))
    {
        var hidden = inp * expandRatio;
        useResConnect = stride == 1 && inp == oup;
        conv = Sequential(
            ("0", Sequential(("0", Conv2d(inp, hidden, 1, bias: false)), ("1", BatchNorm2d(hidden)), ("2", ReLU6()))),
            ("1", Sequential(("0", Conv2d(hidden, hidden, 3, stride: stride, padding: 1, groups: hidden, bias: false)), ("1", BatchNorm2d(hidden)), ("2", ReLU6()))),
            ("2", Conv2d(hidden, oup, 1, bias: false)),
            ("3", BatchNorm2d(oup)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = conv.call(x);
        return (useResConnect ? x + y : y).MoveToOuterDisposeScope();
    }
}

internal sealed class HandShuffleDownUnit : Module<Tensor, Tensor>
{
    private readonly Sequential branch1, branch2;

    public HandShuffleDownUnit(long inp, long branchFeatures, long stride) : base(nameof(HandShuffleDownUnit))
    {
        branch1 = Sequential(
            ("0", Conv2d(inp, inp, 3, stride: stride, padding: 1, groups: inp, bias: false)), ("1", BatchNorm2d(inp)),
            ("2", Conv2d(inp, branchFeatures, 1, bias: false)), ("3", BatchNorm2d(branchFeatures)), ("4", ReLU()));
        branch2 = Sequential(
            ("0", Conv2d(inp, branchFeatures, 1, bias: false)), ("1", BatchNorm2d(branchFeatures)), ("2", ReLU()),
            ("3", Conv2d(branchFeatures, branchFeatures, 3, stride: stride, padding: 1, groups: branchFeatures, bias: false)), ("4", BatchNorm2d(branchFeatures)),
            ("5", Conv2d(branchFeatures, branchFeatures, 1, bias: false)), ("6", BatchNorm2d(branchFeatures)), ("7", ReLU()));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = cat(new[] { branch1.call(x), branch2.call(x) }, 1);
        long n = y.shape[0], c = y.shape[1], h = y.shape[2], w = y.shape[3];
        return y.view(n, 2, c / 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w).MoveToOuterDisposeScope();
    }
}

internal sealed class HandBasicBlock : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1, conv2;
    private readonly BatchNorm2d bn1, bn2;
    private readonly ChannelEquilibrium? ce;
    private readonly ReLU relu;
    private readonly Sequential? downsample;

    public HandBasicBlock(long inplanes, long planes, long stride, bool withCe) : base(nameof(HandBasicBlock))
    {
        conv1 = Conv2d(inplanes, planes, 3, stride: stride, padding: 1, bias: false);
        bn1 = BatchNorm2d(planes);
        conv2 = Conv2d(planes, planes, 3, padding: 1, bias: false);
        bn2 = BatchNorm2d(planes);
        if (withCe) ce = new ChannelEquilibrium(planes, groupSize: 16, reduction: 4);
        relu = ReLU();
        if (stride != 1 || inplanes != planes)
            downsample = Sequential(("0", Conv2d(inplanes, planes, 1, stride: stride, bias: false)), ("1", BatchNorm2d(planes)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = downsample is null ? x : downsample.call(x);
        var outp = relu.call(bn1.call(conv1.call(x)));
        outp = bn2.call(conv2.call(outp));
        if (ce is not null) outp = ce.call(outp);
        return relu.call(outp + identity).MoveToOuterDisposeScope();
    }
}

internal sealed class HandCifarResNet : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ChannelEquilibrium ce1;
    private readonly ReLU relu;
    private readonly Sequential layer1, layer2;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Linear fc;

    public HandCifarResNet(long classes) : base(nameof(HandCifarResNet))
    {
        conv1 = Conv2d(3, 16, 3, padding: 1, bias: false);
        bn1 = BatchNorm2d(16);
        ce1 = new ChannelEquilibrium(16, groupSize: 64, reduction: 4);
        relu = ReLU();
        layer1 = Sequential(("0", new HandBasicBlock(16, 16, 1, withCe: true)), ("1", new HandBasicBlock(16, 16, 1, withCe: true)));
        layer2 = Sequential(("0", new HandBasicBlock(16, 32, 2, withCe: false)), ("1", new HandBasicBlock(32, 32, 1, withCe: false)));
        avgpool = AdaptiveAvgPool2d(1);
        fc = Linear(32, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = relu.call(ce1.call(bn1.call(conv1.call(x))));
        y = layer2.call(layer1.call(y));
        y = flatten(avgpool.call(y), 1);
        return fc.call(y).MoveToOuterDisposeScope();
    }
}
