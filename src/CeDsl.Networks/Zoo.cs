using static TorchSharp.torch;

namespace CeDsl.Networks;

/// <summary>One network of the <see cref="Zoo"/>.</summary>
/// <param name="Name">The factory name, e.g. <c>ce-resnet50</c>.</param>
/// <param name="Type">The generated class, e.g. <see cref="CeResNet50"/>.</param>
/// <param name="Family">The architecture without variant, e.g. <c>resnet50</c>.</param>
/// <param name="Variant">What sits between the norms and the activations: <c>bn</c> (the baseline), <c>se</c>, <c>ce</c>, <c>bd</c>, <c>aii</c>, or <c>gn</c>/<c>in</c>/<c>ln</c> with or without <c>+ce</c>; <c>sconv</c>: selective convolutions; <c>prune</c>: selective convolutions that only release channels (K = 0).</param>
/// <param name="InputShape">The declared input (C, H, W).</param>
/// <param name="Classes">The declared number of classes.</param>
public sealed record ZooEntry(string Name, Type Type, string Family, string Variant, IReadOnlyList<long> InputShape, int Classes)
{
    internal Func<long, long, Device?, ScalarType?, nn.Module<Tensor, Tensor>> Factory { get; init; } = null!;

    internal Func<long, long, Device?, ScalarType?, nn.Module<Tensor, Tensor>> FoldedFactory { get; init; } = null!;

    /// <summary>Creates the network with the declared classes and input channels, or the given ones.</summary>
    public nn.Module<Tensor, Tensor> Create(long? classes = null, long? inChannels = null, Device? device = null, ScalarType? dtype = null)
    {
        if (classes is <= 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, $"The number of classes of '{Name}' must be positive.");
        if (inChannels is <= 0) throw new ArgumentOutOfRangeException(nameof(inChannels), inChannels, $"The input channels of '{Name}' must be positive.");
        return Factory(classes ?? Classes, inChannels ?? InputShape[0], device, dtype);
    }

    /// <summary>
    /// Creates the empty inference form <c>X.Folded</c> of the network (the generated nested class, whose
    /// constructor takes the same parameters as X's), to load a saved folded state dict into.
    /// </summary>
    public nn.Module<Tensor, Tensor> CreateFolded(long? classes = null, long? inChannels = null, Device? device = null, ScalarType? dtype = null)
    {
        if (classes is <= 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, $"The number of classes of '{Name}' must be positive.");
        if (inChannels is <= 0) throw new ArgumentOutOfRangeException(nameof(inChannels), inChannels, $"The input channels of '{Name}' must be positive.");
        return FoldedFactory(classes ?? Classes, inChannels ?? InputShape[0], device, dtype);
    }
}

/// <summary>
/// The model zoo by name: the paper's networks as BN baseline, SE and CE variants (and BD, AII, and
/// GN/IN/LN with and without CE for ResNet-50), plus small-input networks for 32x32 images. The typed
/// classes (<see cref="CeResNet50"/>, ...) are the same networks; this is the lookup for tools and
/// command lines.
/// </summary>
/// <example>
/// <code>
/// using var model = Zoo.Create("ce-resnet20", classes: 10, inChannels: 1); // Fashion-MNIST, padded to 32x32
/// </code>
/// </example>
public static class Zoo
{
    private static readonly long[] ImageNet = [3, 224, 224];
    private static readonly long[] Cifar = [3, 32, 32];

    private static ZooEntry Entry<T, TFolded>(string family, string variant, long[] input, int classes,
        Func<long, long, Device?, ScalarType?, T> create, Func<long, long, Device?, ScalarType?, TFolded> createFolded)
        where T : nn.Module<Tensor, Tensor> where TFolded : nn.Module<Tensor, Tensor>
    {
        var name = variant switch
        {
            "bn" => family,
            "gn" or "in" or "ln" => variant + "-" + family,
            _ => variant.Replace('+', '-') + "-" + family,
        };
        return new ZooEntry(name, typeof(T), family, variant, input, classes)
        {
            Factory = (c, i, d, t) => create(c, i, d, t),
            FoldedFactory = (c, i, d, t) => createFolded(c, i, d, t),
        };
    }

    /// <summary>Every network, in a stable order (by family, baseline first).</summary>
    public static IReadOnlyList<ZooEntry> Entries { get; } =
    [
        Entry("resnet18", "bn", ImageNet, 1000, (c, i, d, t) => new ResNet18(c, i, d, t), (c, i, d, t) => new ResNet18.Folded(c, i, d, t)),
        Entry("resnet18", "se", ImageNet, 1000, (c, i, d, t) => new SeResNet18(c, i, d, t), (c, i, d, t) => new SeResNet18.Folded(c, i, d, t)),
        Entry("resnet18", "ce", ImageNet, 1000, (c, i, d, t) => new CeResNet18(c, i, d, t), (c, i, d, t) => new CeResNet18.Folded(c, i, d, t)),
        Entry("resnet50", "bn", ImageNet, 1000, (c, i, d, t) => new ResNet50(c, i, d, t), (c, i, d, t) => new ResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "se", ImageNet, 1000, (c, i, d, t) => new SeResNet50(c, i, d, t), (c, i, d, t) => new SeResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "ce", ImageNet, 1000, (c, i, d, t) => new CeResNet50(c, i, d, t), (c, i, d, t) => new CeResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "bd", ImageNet, 1000, (c, i, d, t) => new BdResNet50(c, i, d, t), (c, i, d, t) => new BdResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "aii", ImageNet, 1000, (c, i, d, t) => new AiiResNet50(c, i, d, t), (c, i, d, t) => new AiiResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "gn", ImageNet, 1000, (c, i, d, t) => new GnResNet50(c, i, d, t), (c, i, d, t) => new GnResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "ce+gn", ImageNet, 1000, (c, i, d, t) => new CeGnResNet50(c, i, d, t), (c, i, d, t) => new CeGnResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "in", ImageNet, 1000, (c, i, d, t) => new InResNet50(c, i, d, t), (c, i, d, t) => new InResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "ce+in", ImageNet, 1000, (c, i, d, t) => new CeInResNet50(c, i, d, t), (c, i, d, t) => new CeInResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "ln", ImageNet, 1000, (c, i, d, t) => new LnResNet50(c, i, d, t), (c, i, d, t) => new LnResNet50.Folded(c, i, d, t)),
        Entry("resnet50", "ce+ln", ImageNet, 1000, (c, i, d, t) => new CeLnResNet50(c, i, d, t), (c, i, d, t) => new CeLnResNet50.Folded(c, i, d, t)),
        Entry("resnet101", "bn", ImageNet, 1000, (c, i, d, t) => new ResNet101(c, i, d, t), (c, i, d, t) => new ResNet101.Folded(c, i, d, t)),
        Entry("resnet101", "se", ImageNet, 1000, (c, i, d, t) => new SeResNet101(c, i, d, t), (c, i, d, t) => new SeResNet101.Folded(c, i, d, t)),
        Entry("resnet101", "ce", ImageNet, 1000, (c, i, d, t) => new CeResNet101(c, i, d, t), (c, i, d, t) => new CeResNet101.Folded(c, i, d, t)),
        Entry("mobilenetv2", "bn", ImageNet, 1000, (c, i, d, t) => new MobileNetV2(c, i, d, t), (c, i, d, t) => new MobileNetV2.Folded(c, i, d, t)),
        Entry("mobilenetv2", "se", ImageNet, 1000, (c, i, d, t) => new SeMobileNetV2(c, i, d, t), (c, i, d, t) => new SeMobileNetV2.Folded(c, i, d, t)),
        Entry("mobilenetv2", "ce", ImageNet, 1000, (c, i, d, t) => new CeMobileNetV2(c, i, d, t), (c, i, d, t) => new CeMobileNetV2.Folded(c, i, d, t)),
        Entry("shufflenetv2-0.5x", "bn", ImageNet, 1000, (c, i, d, t) => new ShuffleNetV2X05(c, i, d, t), (c, i, d, t) => new ShuffleNetV2X05.Folded(c, i, d, t)),
        Entry("shufflenetv2-0.5x", "se", ImageNet, 1000, (c, i, d, t) => new SeShuffleNetV2X05(c, i, d, t), (c, i, d, t) => new SeShuffleNetV2X05.Folded(c, i, d, t)),
        Entry("shufflenetv2-0.5x", "ce", ImageNet, 1000, (c, i, d, t) => new CeShuffleNetV2X05(c, i, d, t), (c, i, d, t) => new CeShuffleNetV2X05.Folded(c, i, d, t)),
        Entry("shufflenetv2-1.0x", "bn", ImageNet, 1000, (c, i, d, t) => new ShuffleNetV2X10(c, i, d, t), (c, i, d, t) => new ShuffleNetV2X10.Folded(c, i, d, t)),
        Entry("shufflenetv2-1.0x", "se", ImageNet, 1000, (c, i, d, t) => new SeShuffleNetV2X10(c, i, d, t), (c, i, d, t) => new SeShuffleNetV2X10.Folded(c, i, d, t)),
        Entry("shufflenetv2-1.0x", "ce", ImageNet, 1000, (c, i, d, t) => new CeShuffleNetV2X10(c, i, d, t), (c, i, d, t) => new CeShuffleNetV2X10.Folded(c, i, d, t)),
        Entry("vgg16-bn", "bn", Cifar, 10, (c, i, d, t) => new Vgg16Bn(c, i, d, t), (c, i, d, t) => new Vgg16Bn.Folded(c, i, d, t)),
        Entry("vgg16-bn", "se", Cifar, 10, (c, i, d, t) => new SeVgg16Bn(c, i, d, t), (c, i, d, t) => new SeVgg16Bn.Folded(c, i, d, t)),
        Entry("vgg16-bn", "ce", Cifar, 10, (c, i, d, t) => new CeVgg16Bn(c, i, d, t), (c, i, d, t) => new CeVgg16Bn.Folded(c, i, d, t)),
        Entry("resnet20", "bn", Cifar, 10, (c, i, d, t) => new ResNet20(c, i, d, t), (c, i, d, t) => new ResNet20.Folded(c, i, d, t)),
        Entry("resnet20", "se", Cifar, 10, (c, i, d, t) => new SeResNet20(c, i, d, t), (c, i, d, t) => new SeResNet20.Folded(c, i, d, t)),
        Entry("resnet20", "ce", Cifar, 10, (c, i, d, t) => new CeResNet20(c, i, d, t), (c, i, d, t) => new CeResNet20.Folded(c, i, d, t)),
        Entry("resnet20", "bd", Cifar, 10, (c, i, d, t) => new BdResNet20(c, i, d, t), (c, i, d, t) => new BdResNet20.Folded(c, i, d, t)),
        Entry("resnet20", "aii", Cifar, 10, (c, i, d, t) => new AiiResNet20(c, i, d, t), (c, i, d, t) => new AiiResNet20.Folded(c, i, d, t)),
        Entry("resnet18-cifar", "bn", Cifar, 10, (c, i, d, t) => new ResNet18Cifar(c, i, d, t), (c, i, d, t) => new ResNet18Cifar.Folded(c, i, d, t)),
        Entry("resnet18-cifar", "se", Cifar, 10, (c, i, d, t) => new SeResNet18Cifar(c, i, d, t), (c, i, d, t) => new SeResNet18Cifar.Folded(c, i, d, t)),
        Entry("resnet18-cifar", "ce", Cifar, 10, (c, i, d, t) => new CeResNet18Cifar(c, i, d, t), (c, i, d, t) => new CeResNet18Cifar.Folded(c, i, d, t)),
        Entry("preresnet29", "bn", Cifar, 10, (c, i, d, t) => new PreResNet29(c, i, d, t), (c, i, d, t) => new PreResNet29.Folded(c, i, d, t)),
        Entry("preresnet29", "sconv", Cifar, 10, (c, i, d, t) => new SelectivePreResNet29(c, i, d, t), (c, i, d, t) => new SelectivePreResNet29.Folded(c, i, d, t)),
        Entry("preresnet29", "prune", Cifar, 10, (c, i, d, t) => new PruningPreResNet29(c, i, d, t), (c, i, d, t) => new PruningPreResNet29.Folded(c, i, d, t)),
    ];

    /// <summary>The factory names.</summary>
    public static IEnumerable<string> Names => Entries.Select(e => e.Name);

    /// <summary>The entry called <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No network has that name; the message lists the names, closest first.</exception>
    public static ZooEntry Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var entry = Entries.FirstOrDefault(e => string.Equals(e.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
        if (entry is not null) return entry;
        var suggestions = Entries.OrderBy(e => Distance(e.Name, name.Trim().ToLowerInvariant())).Take(3).Select(e => e.Name);
        throw new ArgumentException(
            $"No network is called '{name}'. Did you mean {string.Join(" or ", suggestions)}? All networks: {string.Join(", ", Names)}.", nameof(name));
    }

    /// <summary>Creates the network called <paramref name="name"/>, e.g. <c>Zoo.Create("ce-resnet50")</c>.</summary>
    /// <param name="name">A name of <see cref="Names"/> (case-insensitive).</param>
    /// <param name="classes">The number of classes (default: the declared one, 1000 for ImageNet networks, 10 for 32x32 ones).</param>
    /// <param name="inChannels">The input channels (default 3; 1 for Fashion-MNIST).</param>
    /// <param name="device">The device of the parameters and buffers.</param>
    /// <param name="dtype">The element type of the parameters and buffers (default float32).</param>
    public static nn.Module<Tensor, Tensor> Create(string name, long? classes = null, long? inChannels = null, Device? device = null, ScalarType? dtype = null) =>
        Find(name).Create(classes, inChannels, device, dtype);

    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            previous = current;
        }
        return previous[b.Length];
    }
}
