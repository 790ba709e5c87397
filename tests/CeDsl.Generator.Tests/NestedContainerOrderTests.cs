using CeDsl;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Generator.Tests
{
    /// <summary>
    /// An unnamed CE, BD or AII declared between two layers of a nested container ("0.1" and "0.2")
    /// joins that container, so that it runs where it is declared rather than after the container.
    /// </summary>
    public class NestedContainerOrderTests
    {
        [Fact]
        public void AnUnnamedBdBetweenLayersOfANestedContainerRunsWhereItIsDeclared()
        {
            manual_seed(3);
            using var block = new NestedBdBlock(8, 8);
            Assert.Equal(["0", "1", "2"], Children(block, "conv"));
            Assert.Equal(["0", "1", "bd", "2"], Children(block, "conv.0"));

            // Train the statistics away from their initial values, then compare with the declared order applied by hand.
            using (no_grad())
            {
                block.train();
                for (int i = 0; i < 3; i++) block.call(randn(4, 8, 6, 6));
            }
            block.eval();
            using var input = randn(2, 8, 6, 6);
            using var scope = NewDisposeScope();
            var x = Submodule(block, "conv.0.0").call(input);
            x = Submodule(block, "conv.0.1").call(x);
            x = Submodule(block, "conv.0.bd").call(x);
            x = Submodule(block, "conv.0.2").call(x);
            x = Submodule(block, "conv.1").call(x);
            x = Submodule(block, "conv.2").call(x);
            Assert.Equal(0, (block.call(input) - x).abs().max().item<float>(), 6);
            // Applying the BD after the ReLU (the order before the fix) gives another function.
            var reluFirst = Submodule(block, "conv.0.bd").call(Submodule(block, "conv.0.2").call(Submodule(block, "conv.0.1").call(Submodule(block, "conv.0.0").call(input))));
            Assert.True((reluFirst - x.detach()).abs().max().item<float>() > 1e-3);
        }

        private static List<string> Children(nn.Module module, string path) =>
            module.named_modules().Single(m => m.name == path).module.named_children().Select(c => c.name).ToList();

        private static nn.Module<Tensor, Tensor> Submodule(nn.Module module, string path) =>
            (nn.Module<Tensor, Tensor>)module.named_modules().Single(m => m.name == path).module;
    }
}

namespace CeDsl.Generator.Tests
{
    [Block]
    [Seq("conv")]
    [Conv(3, Name = "0.0")] [Norm(Name = "0.1")] [BD(GroupSize = 4)] [ReLU(Name = "0.2")]
    [Conv(1)] [Norm]
    public partial class NestedBdBlock;
}
