using CeDsl.Architecture;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Networks.Tests;

/// <summary>
/// The zoo's networks seen through their types alone (<see cref="GeneratedNetwork"/>), as a tool finds a user's
/// networks in an assembly it loads: the same declarations, modules, folded forms and architectures as the zoo's factories.
/// </summary>
public class GeneratedNetworkTests
{
    [Fact]
    public void EveryZooNetworkIsFoundInItsAssemblyWithItsDeclaredInputAndClasses()
    {
        var found = GeneratedNetwork.In(typeof(Zoo).Assembly).ToDictionary(n => n.Type);

        Assert.All(Zoo.Entries, entry =>
        {
            Assert.True(found.TryGetValue(entry.Type, out var network), $"{entry.Name} ({entry.Type.Name}) was not found");
            Assert.Equal(entry.InputShape, network!.Input.Dimensions);
            Assert.Equal(entry.Classes, network.Classes);
            Assert.Equal(entry.Type.Name, network.Name);
            Assert.Same(entry.Type.GetNestedType("Folded"), network.FoldedType);
        });
        Assert.DoesNotContain(found.Keys, type => type.IsDefined(typeof(BlockAttribute), inherit: false));
    }

    [Theory]
    [InlineData("ce-resnet20")]
    [InlineData("shufflenetv2-0.5x")]
    [InlineData("prune-preresnet29")]
    public void BuildsTheNetworkAndItsFoldedFormAsTheZoosFactoriesDo(string name)
    {
        var entry = Zoo.Find(name);
        var network = GeneratedNetwork.Of(entry.Type);

        using var expected = entry.Create(classes: 7, inChannels: 1);
        using var actual = network.Create(classes: 7, inChannels: 1);
        Assert.IsType(entry.Type, actual);
        Assert.Equal(Shapes(expected), Shapes(actual));
        Assert.Equal([7, 1], new[] { actual.parameters().Last().shape[0], actual.parameters().First().shape[1] });

        using var expectedFolded = entry.CreateFolded(classes: 7, inChannels: 1, dtype: ScalarType.Float64);
        using var actualFolded = network.CreateFolded(classes: 7, inChannels: 1, dtype: ScalarType.Float64);
        Assert.IsType(network.FoldedType, actualFolded);
        Assert.Equal(Shapes(expectedFolded), Shapes(actualFolded));
        Assert.All(actualFolded.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));

        // Without arguments: the declared classes and input channels, which the architecture describes.
        using var declared = network.Create();
        Assert.Equal(network.Architecture.State.ToDictionary(s => s.Key, s => s.Entry.Shape.ToArray()), Shapes(declared));
        Assert.Equal(entry.Type.Name + ".Folded", network.FoldedArchitecture.Name);
    }

    [Fact]
    public void ATypeTheGeneratorDidNotCompleteAsANetworkIsRefusedWithTheReason()
    {
        Assert.False(GeneratedNetwork.IsGeneratedNetwork(typeof(BasicBlock)));
        Assert.True(GeneratedNetwork.IsGeneratedNetwork(typeof(CeResNet20)));
        var error = Assert.Throws<ArgumentException>(() => GeneratedNetwork.Of(typeof(BasicBlock)));
        Assert.Equal("CeDsl.Networks.BasicBlock is not a generated CeDsl network: it has no [Network] attribute (Parameter 'type')", error.Message);
        Assert.Throws<ArgumentException>(() => GeneratedNetwork.Of(typeof(CeResNet20.Folded)));
    }

    [Fact]
    public void DescribesTheNetworkAndItsFoldedFormForOtherClassesAndInputs()
    {
        var network = GeneratedNetwork.Of(typeof(CeResNet20));

        Assert.Equal(CeResNet20.Architecture.Nodes.Count, network.Describe().Nodes.Count);
        Assert.Equal(CeResNet20.Architecture.Input, network.Describe().Input);
        var described = network.Describe(classes: 7, input: TensorShape.Map(3, 64, 48));
        Assert.Equal(TensorShape.Map(3, 64, 48), described.Input);
        Assert.Equal(7, described.Output.Channels);
        using var built = network.Create(classes: 7, inChannels: 3);
        Assert.Equal(described.State.ToDictionary(s => s.Key, s => s.Entry.Shape.ToArray()), Shapes(built));

        var folded = network.Describe(classes: 7, input: TensorShape.Map(3, 64, 48), folded: true);
        Assert.Equal("CeResNet20.Folded", folded.Name);
        using var builtFolded = network.CreateFolded(classes: 7, inChannels: 3);
        Assert.Equal(folded.State.ToDictionary(s => s.Key, s => s.Entry.Shape.ToArray()), Shapes(builtFolded));
    }

    [Fact]
    public void AnInputTheNetworkCannotTakeIsRefusedNamingTheNode()
    {
        // VGG-16's classifier takes the 512 features of a 32x32 input only.
        var error = Assert.Throws<ArgumentException>(() => GeneratedNetwork.Of(typeof(Vgg16Bn)).Describe(input: TensorShape.Map(3, 64, 64)));
        Assert.Contains("classifier", error.Message);
    }

    [Fact]
    public void CountsArePositive()
    {
        var network = GeneratedNetwork.Of(typeof(CeResNet20));
        Assert.Throws<ArgumentOutOfRangeException>(() => network.Create(classes: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => network.CreateFolded(inChannels: -1));
    }

    private static Dictionary<string, long[]> Shapes(nn.Module module) => module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
}
