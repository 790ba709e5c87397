namespace CeDsl.Generator.Model;

/// <summary>
/// The validated model of one generated class, what the emitter writes and nothing else: its members (the
/// module tree), its forward, its constructor's signature, and, for a trained class, its folded form
/// (<see cref="Folded"/>), or, for a folded class, how it is filled from the trained one (<see cref="FoldsFrom"/>).
/// Every value is a number, a <see cref="Dim"/>, a <see cref="Condition"/> or an enum; no field holds C#.
/// </summary>
internal sealed record ClassPlan(
    TypeRef Type,
    ClassSignature Signature,
    EquatableArray<MemberPlan> Members,
    EquatableArray<ForwardOp> Forward)
{
    /// <summary>The inference-only form of a trained class (its nested <c>Folded</c> class); null for a folded class.</summary>
    public ClassPlan? Folded { get; init; }

    /// <summary>For a folded class: the trained class and the steps of its <c>FoldFrom</c>.</summary>
    public FoldingPlan? FoldsFrom { get; init; }
}

/// <summary>What a block's or a network's constructor takes.</summary>
internal abstract record ClassSignature;

/// <summary>
/// A block's constructor: <c>(inChannels, width, [stride], [placement], [ceGroupSize, ceReduction])</c>, and how its
/// shortcut behaves.
/// </summary>
/// <param name="UsesStride">It takes <c>stride</c> (a layer declares <c>Stride = From.Parameter</c>).</param>
/// <param name="HasPlacement">It takes <c>placement</c> (it has CE, BD or AII layers, declared or by the paper's rule).</param>
/// <param name="HasRuleSites">It takes <c>ceGroupSize</c> and <c>ceReduction</c> (the paper's rule places its CE).</param>
/// <param name="Defaults">The defaults of <c>placement</c>, <c>ceGroupSize</c> and <c>ceReduction</c> (the network attribute's).</param>
/// <param name="OutputChannels">The block's output channels.</param>
/// <param name="Residual">The shortcut.</param>
/// <param name="ResidualCondition">Projection: where the downsample exists; IdentityIfSameShape: where the residual is added.</param>
/// <param name="ShapeCheck">Identity: where the constructor must refuse its arguments (the main path changes the shape).</param>
/// <param name="ResidualChannels">Identity: the main path's channels, for that refusal's message.</param>
internal sealed record BlockSignature(
    bool UsesStride,
    bool HasPlacement,
    bool HasRuleSites,
    PlacementDefaults Defaults,
    Dim OutputChannels,
    Shortcut Residual,
    Condition ResidualCondition,
    Condition ShapeCheck,
    Dim ResidualChannels) : ClassSignature;

/// <summary>The network attribute's defaults, which a block's placement parameters take when a user builds it alone.</summary>
internal sealed record PlacementDefaults(Placement Placement, int CEGroupSize, int CEReduction);

/// <summary>
/// A network's constructor: <c>classes</c> when the last linear layer has the network's classes,
/// <c>inChannels</c> when only convolutions read the input's channels.
/// </summary>
internal sealed record NetworkSignature(long InputChannels, long InputHeight, long InputWidth, int Classes, bool UsesClasses, bool UsesInputChannels) : ClassSignature;

/// <summary>How a module's parameters are initialized after construction.</summary>
internal enum Initialization
{
    /// <summary>As the framework creates them (also every module of a folded class: folding overwrites them).</summary>
    Framework,

    /// <summary>torchvision's convolution: Kaiming normal, fan out, ReLU gain; a zero bias.</summary>
    KaimingFanOut,

    /// <summary>torchvision's normalization: weight 1, bias 0.</summary>
    OnesAndZeros,

    /// <summary>A linear layer with <see cref="LinearPlan.InitStd"/>: weight normal(0, std), bias 0.</summary>
    Normal,
}

/// <summary>
/// A node of the module tree: a leaf layer or a Sequential container. At the root, the name is the field
/// name; below, the key in the parent Sequential. <see cref="Exists"/> says under which constructor
/// arguments it is built.
/// </summary>
internal sealed record MemberPlan(string Name, string Path, LayerPlan? Leaf, EquatableArray<MemberPlan> Children, Condition Exists, Initialization Init = Initialization.Framework)
{
    public bool IsContainer => Leaf is null;
}

/// <summary>What a leaf module is, with every argument it is built with.</summary>
internal abstract record LayerPlan;

internal sealed record ConvPlan(Dim In, Dim Out, int Kernel, Dim Stride, int Padding, Dim Groups, bool Bias) : LayerPlan;

/// <summary>The module a normalization becomes: a [Norm] of kind BN on flattened features is a BatchNorm1d, LN on a feature map a one-group GroupNorm.</summary>
internal enum NormModule { BatchNorm2d, BatchNorm1d, GroupNorm, InstanceNorm2d, LayerNorm }

internal sealed record NormPlan(NormModule Module, Dim Channels, Dim Groups, double Eps, double Momentum) : LayerPlan;

internal sealed record ChannelEquilibriumPlan(Dim Channels, Dim GroupSize, Dim Reduction, int Iterations) : LayerPlan;

internal sealed record BatchDecorrelationPlan(Dim Channels, Dim GroupSize, int Iterations) : LayerPlan;

internal sealed record AdaptiveInstanceInversePlan(Dim Channels, Dim Reduction) : LayerPlan;

internal sealed record SqueezeExcitationPlan(Dim Channels, Dim Reduction) : LayerPlan;

/// <summary>A selective convolution; <see cref="NMax"/> 0 means no cap.</summary>
internal sealed record SelectiveConvPlan(Dim In, Dim Out, int Kernel, Dim Stride, int Padding, double Dropout, double Gamma, int K, int NMax) : LayerPlan;

internal enum Activation { ReLU, ReLU6 }

internal sealed record ActivationPlan(Activation Activation) : LayerPlan;

internal sealed record PoolPlan(bool Max, int Kernel, int Stride, int Padding) : LayerPlan;

internal sealed record GlobalPoolPlan(int Size) : LayerPlan;

internal sealed record FlattenPlan : LayerPlan;

internal sealed record LinearPlan(Dim In, Dim Out, bool Bias, double InitStd) : LayerPlan;

internal sealed record DropoutPlan(double P) : LayerPlan;

/// <summary>A block instance of a stage: the block's type (its <c>Folded</c> class when <see cref="Folded"/>) and constructor arguments.</summary>
internal sealed record BlockPlan(TypeRef Type, bool Folded, BlockArguments Arguments) : LayerPlan;

/// <summary>The arguments of a block's constructor; null where the block does not take the parameter.</summary>
internal sealed record BlockArguments(Dim InChannels, Dim Width, Dim? Stride, Placement? Placement, Dim? CEGroupSize, Dim? CEReduction);

/// <summary>A folded CE: one map per sample (<c>FoldedChannelEquilibrium</c>).</summary>
internal sealed record FoldedChannelEquilibriumPlan(Dim Channels, Dim GroupSize, Dim Reduction, bool InPlace) : LayerPlan;

/// <summary>A folded AII (<c>FoldedAdaptiveInstanceInverse</c>).</summary>
internal sealed record FoldedAdaptiveInstanceInversePlan(Dim Channels, Dim Reduction, bool InPlace) : LayerPlan;

/// <summary>A pruning-only selective convolution without its closed channels (<c>PrunedSelectiveConv2d</c>).</summary>
internal sealed record PrunedSelectiveConvPlan(Dim In, Dim Out, int Kernel, Dim Stride, int Padding, double Dropout) : LayerPlan;

internal enum OpKind { Call, Split, Concat, Branches, Shuffle, Residual }

/// <summary>One statement of forward. <see cref="Target"/> and <see cref="Targets"/> name root members.</summary>
internal sealed record ForwardOp(OpKind Kind, string Target, EquatableArray<string> Targets, int Groups, bool Optional);

/// <summary>What a statement of a folded class's <c>FoldFrom</c> does (see CeDsl.Folding.ModuleFolder).</summary>
internal enum FoldStepKind { Chain, Copy, Prune, Block, Nested }

/// <summary>One statement of <c>FoldFrom</c>: paths of the trained module, the same in the folded one.</summary>
internal sealed record FoldStep(FoldStepKind Kind, string Path, string? Norm = null, string? Block = null, TypeRef? BlockType = null);

/// <summary>How a folded class is filled from its trained class.</summary>
internal sealed record FoldingPlan(TypeRef Trained, bool Prunes, EquatableArray<FoldStep> Steps);
