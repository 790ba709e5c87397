using CeDsl;

namespace QuickStart;

// A residual block: torchvision's BasicBlock. The attributes, read in order, are the layers; the
// generator adds the constructor, the submodules (conv1, bn1, relu, conv2, bn2, downsample) and forward.
[Block(Residual = Shortcut.Projection)]
[Conv(3, Stride = From.Parameter)] [Norm(Kind.BN)] [ReLU]
[Conv(3)] [Norm(Kind.BN)]
[Add] [ReLU]
public partial class BasicBlock;

// A small ResNet for 28x28 grayscale images. Placement.Paper puts Channel Equilibrium where the
// paper does: after the stem's normalization (ce1) and after each block's last normalization.
[Network(Input = "1x28x28", Classes = 10, CE = Placement.Paper)]
[Stem] [Conv(3, Out = 16)] [Norm(Kind.BN)] [ReLU]
[Stage(typeof(BasicBlock), Blocks = 1, Out = 16)]
[Stage(typeof(BasicBlock), Blocks = 1, Out = 32, Stride = 2)]
[Stage(typeof(BasicBlock), Blocks = 1, Out = 64, Stride = 2)]
public partial class TinyResNet;

// A deliberate mistake: CE reads the output of a normalization, but here it follows the
// activation. Uncomment the three lines below and build; the build fails with
//   Networks.cs(27,35): error CEDSL004: CE must directly follow a normalization layer ([Norm]), but follows [ReLU]
// on the [CE] attribute (docs/diagnostics.md#cedsl004). [Conv(3)] [Norm(Kind.BN)] [CE] [ReLU] is right.
//[Block]
//[Conv(3)] [Norm(Kind.BN)] [ReLU] [CE]
//public partial class MisplacedCe;
