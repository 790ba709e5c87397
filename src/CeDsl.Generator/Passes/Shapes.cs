using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Passes;

/// <summary>What a stage needs of a block it instantiates: its constructor and sizes, or that it failed.</summary>
/// <param name="Signature">The block's constructor (null when it has errors).</param>
/// <param name="Output">Its output shape over the block's parameters.</param>
/// <param name="Checks">Its size checks, re-run with each stage's sizes.</param>
internal sealed record BlockResult(BlockSignature? Signature, Shape? Output, EquatableArray<SizeCheck> Checks);

/// <summary>A block's shortcut: its conditions and, for a projection, the sized layers of downsample.0 and downsample.1.</summary>
internal sealed record ResidualResult(Condition ResidualCondition, Condition ShapeCheck, Dim ResidualChannels, EquatableArray<LayerPlan> Projection);

/// <summary>
/// Every layer with its sizes (a <see cref="LayerPlan"/> per step id, shared stateless modules excepted), the
/// input and output shapes, the size checks (a block's, for its stages), and what the constructor takes.
/// </summary>
internal sealed record ShapesResult(
    IReadOnlyDictionary<int, LayerPlan> Layers,
    Shape Input,
    Shape Output,
    EquatableArray<SizeCheck> Checks,
    ResidualResult? Residual,
    bool UsesStride,
    bool UsesClasses,
    bool UsesInputChannels);

/// <summary>
/// The fifth pass: shape inference. Every channel count and spatial size from the input (the network's
/// declared input, or a block's symbolic inChannels x inputHeight x inputWidth), the checks each layer needs,
/// a network's block instances checked with their stage's sizes, a block's residual addition.
/// Returns null (with the diagnostics) when a size cannot be inferred.
/// </summary>
internal static class Shapes
{
    public static (ShapesResult? Result, EquatableArray<DiagnosticInfo> Diagnostics) Infer(
        ClassDeclaration declaration, NamingResult named, System.Func<BlockDeclaration, BlockResult> block)
    {
        var inference = new Inference(declaration, named, block);
        var result = inference.Run();
        return (result, inference.Diagnostics.ToEquatableArray());
    }

    /// <summary>The walk over the steps (its state lives for one call of <see cref="Infer"/>).</summary>
    private sealed class Inference
    {
        private readonly ClassDeclaration declaration;
        private readonly NetworkDeclaration? network;
        private readonly NamingResult named;
        private readonly System.Func<BlockDeclaration, BlockResult> block;
        private readonly Dictionary<int, LayerPlan> layers = new();
        private readonly List<SizeCheck> checks = new();
        private readonly HashSet<(int Stage, SizeCheck Check)> reported = new(ReportedComparer.Instance);
        private Dim strideProduct = Dim.Of(1);
        private bool usesStride, usesClasses;

        // Network convolutions that read the declared input directly: they take the constructor's
        // inChannels unless another layer also depends on the input's channel count.
        private readonly List<int> inputConvolutions = new();
        private bool inputChannelsFixed;

        public Inference(ClassDeclaration declaration, NamingResult named, System.Func<BlockDeclaration, BlockResult> block)
        {
            this.declaration = declaration;
            network = declaration as NetworkDeclaration;
            this.named = named;
            this.block = block;
        }

        public List<DiagnosticInfo> Diagnostics { get; } = new();

        private Shape? Fail(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments)
        {
            Diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? declaration.Location, arguments));
            return null;
        }

        private Shape? Structure(Step step, string message) => Fail(D.InvalidStructure, step.Spec.Location, message);

        private void Check(CheckKind kind, Step step, Dim[] operands, int number = 0, int padding = 0) =>
            checks.Add(new SizeCheck(kind, new EquatableArray<Dim>(operands), step.Site, step.Spec.Location, new Subject(SubjectKind.Layer, step.Label, step.Path), number, padding));

        public ShapesResult? Run()
        {
            Shape input;
            if (network is null)
            {
                input = Shape.Map(Dim.Var(Parameter.InChannels), Dim.Var(Parameter.InputHeight), Dim.Var(Parameter.InputWidth));
            }
            else if (NetworkInput.Parse(network.Input) is { } sizes)
            {
                input = Shape.Map(sizes[0], sizes[1], sizes[2]);
            }
            else
            {
                return null;
            }

            var output = Walk(input, out var residual);
            if (output is null) return null;

            if (network is not null && (!output.Flat || output.C.Constant != network.Classes))
            {
                Fail(D.OutputNotClasses, declaration.Location, declaration.Type.Name, output, network.Classes);
                return null;
            }

            bool usesInputChannels = network is not null && inputConvolutions.Count > 0 && !inputChannelsFixed;
            if (usesInputChannels)
            {
                foreach (var id in inputConvolutions)
                    if (layers[id] is ConvPlan conv) layers[id] = conv with { In = Dim.Var(Parameter.InChannels) };
            }
            return new ShapesResult(layers, input, output, checks.ToEquatableArray(), residual, usesStride, usesClasses, usesInputChannels);
        }

        private Shape? Walk(Shape input, out ResidualResult? residual)
        {
            residual = null;
            var current = input;
            Shape? bypass = null;
            Shape? forkInput = null;
            var branchOutputs = new List<Shape>();
            bool added = false;

            foreach (var step in named.Steps)
            {
                if (network is not null && ReferenceEquals(current, input) && step.Kind is LayerKind.Split or LayerKind.Shuffle or LayerKind.Concat or LayerKind.Add)
                    inputChannelsFixed = true;
                switch (step.Kind)
                {
                    case LayerKind.Split:
                        if (current.Flat) return Structure(step, "[Split] needs a feature map (N, C, H, W)");
                        Check(CheckKind.SplitEven, step, new[] { current.C });
                        bypass = current with { C = current.C / 2 };
                        current = current with { C = current.C / 2 };
                        break;

                    case LayerKind.Branch:
                        if (bypass is not null) break;
                        if (forkInput is null) forkInput = current;
                        else branchOutputs.Add(current);
                        current = forkInput;
                        break;

                    case LayerKind.Concat:
                        List<Shape> parts;
                        if (bypass is not null)
                        {
                            parts = new List<Shape> { bypass, current };
                            bypass = null;
                        }
                        else
                        {
                            branchOutputs.Add(current);
                            parts = new List<Shape>(branchOutputs);
                            branchOutputs.Clear();
                            forkInput = null;
                        }
                        if (parts.Exists(p => p.Flat)) return Structure(step, "[Concat] joins feature maps (N, C, H, W)");
                        var joined = parts[0];
                        foreach (var part in parts.Skip(1))
                        {
                            checks.Add(new SizeCheck(CheckKind.ConcatSpatial, new[] { parts[0].H, parts[0].W, part.H, part.W }.ToEquatableArray(),
                                Site.Always, step.Spec.Location, new Subject(SubjectKind.Concat)));
                            joined = joined with { C = joined.C + part.C };
                        }
                        current = joined;
                        break;

                    case LayerKind.Shuffle:
                        if (current.Flat) return Structure(step, "[Shuffle] needs a feature map (N, C, H, W)");
                        Check(CheckKind.ShuffleGroups, step, new[] { current.C, Dim.Of(step.Spec.Groups) });
                        break;

                    case LayerKind.Add when declaration is BlockDeclaration block:
                        added = true;
                        residual = Residual(block.Residual, input, current, step.Spec.Location);
                        if (residual is null) return null;
                        break;

                    default:
                        if (network is not null && ReferenceEquals(current, input) && !inputChannelsFixed)
                        {
                            if (step.Kind == LayerKind.Conv && !step.Spec.Depthwise && step.Spec.Groups == 1 && step.Spec.In == 0) inputConvolutions.Add(step.Id);
                            else if (step.Kind is not (LayerKind.ReLU or LayerKind.ReLU6 or LayerKind.Dropout)) inputChannelsFixed = true;
                        }
                        var next = Layer(step, current);
                        if (next is null) return null;
                        current = next;
                        break;
                }
            }

            if (declaration is BlockDeclaration { Residual: not Shortcut.None } residualBlock && !added)
            {
                residual = Residual(residualBlock.Residual, input, current, declaration.Location);
                if (residual is null) return null;
            }
            return current;
        }

        private void Size(Step step, LayerPlan layer)
        {
            if (!step.Shared) layers[step.Id] = layer;
        }

        private Shape? Layer(Step step, Shape x)
        {
            var spec = step.Spec;
            switch (step.Kind)
            {
                case LayerKind.Conv:
                case LayerKind.SelectConv:
                    return Convolution(step, x);
                case LayerKind.Norm:
                    return Norm(step, x);
                case LayerKind.CE:
                case LayerKind.BD:
                case LayerKind.AII:
                case LayerKind.SE:
                    return ChannelAttention(step, x);
                case LayerKind.ReLU:
                case LayerKind.ReLU6:
                    Size(step, new ActivationPlan(step.Kind == LayerKind.ReLU ? Activation.ReLU : Activation.ReLU6));
                    return x;
                case LayerKind.MaxPool:
                case LayerKind.AvgPool:
                    return Pooling(step, x);
                case LayerKind.GlobalAvgPool:
                    if (x.Flat) return Structure(step, "[GlobalAvgPool] needs a feature map (N, C, H, W)");
                    Size(step, new GlobalPoolPlan(spec.Size));
                    return Shape.Map(x.C, spec.Size, spec.Size);
                case LayerKind.Flatten:
                    if (!x.Flat && (x.H.Uses(Parameter.InputHeight) || x.W.Uses(Parameter.InputWidth)))
                        return Structure(step, "a block does not know its input's spatial size, so it can only [Flatten] after [GlobalAvgPool]");
                    Size(step, new FlattenPlan());
                    return Shape.Features(x.Flat ? x.C : x.C * x.H * x.W);
                case LayerKind.Linear:
                    return Linear(step, x);
                case LayerKind.Dropout:
                    Size(step, new DropoutPlan(spec.P));
                    return x;
                case LayerKind.Block when network is not null:
                    return Block(step, x, network);
                default:
                    return Structure(step, $"[{step.Kind}] is not a layer");
            }
        }

        private Shape? Convolution(Step step, Shape x)
        {
            var spec = step.Spec;
            bool selective = step.Kind == LayerKind.SelectConv;
            if (x.Flat) return Structure(step, $"[{(selective ? "SelectConv" : "Conv")}] needs a feature map (N, C, H, W), but the input is flattened");
            Dim stride = spec.Stride;
            if (spec.Stride == From.Parameter)
            {
                stride = Dim.Var(Parameter.Stride);
                usesStride = true;
            }

            int padding = spec.Padding == -1 ? spec.Kernel / 2 : spec.Padding;
            Dim groups = spec.Depthwise ? x.C : selective ? 1 : spec.Groups;
            Dim output =
                spec.Out > 0 ? spec.Out :
                spec.Expand > 0 ? Dim.Var(Parameter.Width) * spec.Expand :
                spec.ExpandInput > 0 ? x.C * spec.ExpandInput :
                spec.Depthwise || network is not null ? x.C :
                Dim.Var(Parameter.Width);

            if (spec.In > 0) Check(CheckKind.DeclaredIn, step, new[] { x.C, Dim.Of(spec.In) });
            Check(CheckKind.ConvGroups, step, new[] { x.C, output, groups });
            var h = (x.H + 2 * padding - spec.Kernel) / stride + 1;
            var w = (x.W + 2 * padding - spec.Kernel) / stride + 1;
            Check(CheckKind.KernelFits, step, new[] { x.H, x.W, h, w }, spec.Kernel, padding);

            Size(step, selective
                ? new SelectiveConvPlan(x.C, output, spec.Kernel, stride, padding, spec.P, spec.Gamma, spec.K, spec.NMax)
                : new ConvPlan(x.C, output, spec.Kernel, stride, padding, groups, spec.Bias));
            strideProduct *= stride;
            return Shape.Map(output, h, w);
        }

        private static NormModule Module(Kind kind, bool flat) => kind switch
        {
            Kind.BN => flat ? NormModule.BatchNorm1d : NormModule.BatchNorm2d,
            Kind.GN => NormModule.GroupNorm,
            Kind.IN => NormModule.InstanceNorm2d,
            _ => flat ? NormModule.LayerNorm : NormModule.GroupNorm,
        };

        private Shape? Norm(Step step, Shape x)
        {
            var spec = step.Spec;
            if (x.Flat && spec.Norm is Kind.GN or Kind.IN)
                return Structure(step, $"[Norm(Kind.{spec.Norm})] needs a feature map (N, C, H, W); flattened features take BN or LN");
            Dim groups = 1;
            if (spec.Norm == Kind.GN)
            {
                groups = spec.Groups;
                Check(CheckKind.NormGroups, step, new[] { x.C, groups });
            }
            Size(step, new NormPlan(Module(spec.Norm, x.Flat), x.C, groups, spec.Eps, spec.Momentum));
            return x;
        }

        private Shape? ChannelAttention(Step step, Shape x)
        {
            var spec = step.Spec;
            var kind = step.Kind;
            if (x.Flat) return Structure(step, $"[{kind}] needs a feature map (N, C, H, W)");
            Dim groupSize = step.Placed?.GroupSize ?? spec.GroupSize;
            Dim reduction = step.Placed?.Reduction ?? spec.R;

            if (kind is LayerKind.CE or LayerKind.AII) Check(CheckKind.InstanceVariance, step, new[] { x.H, x.W });
            if (kind is LayerKind.CE or LayerKind.BD && step.Placed is null) Check(CheckKind.GroupSizeHalved, step, new[] { x.C }, spec.GroupSize);
            if (kind is not LayerKind.BD) Check(CheckKind.Reduction, step, new[] { x.C, reduction }, step.Placed is null ? 0 : 1);

            Size(step, kind switch
            {
                LayerKind.CE => new ChannelEquilibriumPlan(x.C, groupSize, reduction, spec.Iterations),
                LayerKind.BD => new BatchDecorrelationPlan(x.C, groupSize, spec.Iterations),
                LayerKind.AII => new AdaptiveInstanceInversePlan(x.C, reduction),
                _ => new SqueezeExcitationPlan(x.C, reduction),
            });
            return x;
        }

        private Shape? Pooling(Step step, Shape x)
        {
            var spec = step.Spec;
            if (x.Flat) return Structure(step, $"[{step.Kind}] needs a feature map (N, C, H, W)");
            int stride = Pool.Stride(spec);
            int padding = Pool.Padding(spec);
            var h = (x.H + 2 * padding - spec.Kernel) / stride + 1;
            var w = (x.W + 2 * padding - spec.Kernel) / stride + 1;
            Check(CheckKind.WindowFits, step, new[] { x.H, x.W, h, w }, spec.Kernel, padding);
            Size(step, new PoolPlan(step.Kind == LayerKind.MaxPool, spec.Kernel, stride, padding));
            strideProduct *= stride;
            return Shape.Map(x.C, h, w);
        }

        private Shape? Linear(Step step, Shape x)
        {
            var spec = step.Spec;
            if (!x.Flat) return Structure(step, "[Linear] needs flattened features; add [Flatten] before it (after [GlobalAvgPool])");
            if (x.C.Uses(Parameter.InputHeight) || x.C.Uses(Parameter.InputWidth))
                return Structure(step, "a block does not know its spatial size: flatten after [GlobalAvgPool] so that [Linear] gets a known number of features");
            Dim output, size;
            if (spec.Out > 0)
            {
                output = size = spec.Out;
            }
            else if (network is not null)
            {
                output = Dim.Var(Parameter.Classes);
                size = network.Classes;
                usesClasses = true;
            }
            else
            {
                return Structure(step, "[Linear] in a block needs Out (only a network's Linear defaults to its Classes)");
            }
            Size(step, new LinearPlan(x.C, output, spec.Bias, spec.InitStd));
            return Shape.Features(size);
        }

        private Shape? Block(Step step, Shape x, NetworkDeclaration network)
        {
            var instance = step.Instance!;
            var stage = step.Spec.Stage!;
            var built = block(instance.Block);
            // The block's own diagnostics explain its failure; the network is not generated until the block is.
            if (built.Signature is not { } signature || built.Output is null) return null;
            if (x.Flat) return Structure(step, "a stage needs a feature map (N, C, H, W)");

            var environment = new Dictionary<Parameter, long>
            {
                [Parameter.InChannels] = x.C.Constant!.Value,
                [Parameter.Width] = stage.Out,
                [Parameter.Stride] = instance.Stride,
                [Parameter.InputHeight] = x.H.Constant!.Value,
                [Parameter.InputWidth] = x.W.Constant!.Value,
                [Parameter.CEGroupSize] = network.CEGroupSize,
                [Parameter.CEReduction] = network.CEReduction,
            };
            var prefix = step.Path!;
            if (instance.Index == 0 && instance.Stride != 1 && !signature.UsesStride)
                Diagnostics.Add(DiagnosticInfo.Create(D.StageStrideUnused, step.Spec.Location, instance.Stride, instance.Block.Type.Name));

            foreach (var check in built.Checks)
            {
                if (check.IsConstant) continue;
                if (check.Site == Site.Rule && instance.Placement != Placement.Paper) continue;
                if (check.Site == Site.Explicit && instance.Placement == Placement.None) continue;
                if (!reported.Add((instance.Stage, check))) continue;
                if (check.Run(environment, prefix, step.Spec.Location) is { } diagnostic)
                    Diagnostics.Add(diagnostic);
                else
                    reported.Remove((instance.Stage, check));
            }

            var output = built.Output;
            var c = output.C.Evaluate(environment);
            var h = output.H.Evaluate(environment);
            var w = output.W.Evaluate(environment);
            if (c is null || h is null || w is null) return Structure(step, $"the output size of block '{instance.Block.Type.Name}' cannot be computed");

            bool ruled = signature.HasRuleSites && instance.Placement == Placement.Paper;
            Size(step, new BlockPlan(instance.Block.Type, Folded: false, new BlockArguments(
                x.C,
                stage.Out,
                signature.UsesStride ? instance.Stride : null,
                signature.HasPlacement ? instance.Placement : null,
                ruled ? network.CEGroupSize : null,
                ruled ? network.CEReduction : null)));
            return output.Flat ? Shape.Features(c.Value) : Shape.Map(c.Value, h.Value, w.Value);
        }

        private ResidualResult? Residual(Shortcut kind, Shape input, Shape main, LocationInfo? location)
        {
            if (main.Flat)
            {
                Fail(D.InvalidStructure, location, "the residual addition needs a feature map (N, C, H, W)");
                return null;
            }
            var stride = strideProduct;
            var differs = Condition.Any(Condition.NotEqual(stride, 1), Condition.NotEqual(input.C, main.C));
            var subject = new Subject(SubjectKind.Residual, TypeName: declaration.Type.Name);
            void CheckResidual(CheckKind check, params Dim[] operands) =>
                checks.Add(new SizeCheck(check, operands.ToEquatableArray(), Site.Always, location, subject));

            switch (kind)
            {
                case Shortcut.Identity:
                    CheckResidual(CheckKind.IdentityShortcut, input.C, input.H, input.W, main.C, main.H, main.W, stride);
                    if (differs == Condition.True)
                    {
                        Fail(D.ShapeMismatchAtMerge, location, subject.Describe(null),
                            $"an identity shortcut needs the main path to keep the input's shape, but it gives {main.C} channels from {input.C} at stride {stride}" + SizeCheck.ProjectionHint);
                        return null;
                    }
                    return new ResidualResult(Condition.True, differs, main.C, EquatableArray<LayerPlan>.Empty);

                case Shortcut.Projection:
                    if (differs == Condition.False) return new ResidualResult(differs, Condition.False, main.C, EquatableArray<LayerPlan>.Empty);
                    CheckResidual(CheckKind.ProjectionShortcut, main.H, main.W, (input.H - 1) / stride + 1, (input.W - 1) / stride + 1, stride);
                    return new ResidualResult(differs, Condition.False, main.C, Projection(input.C, main.C, stride).ToEquatableArray());

                default:
                    // IdentityIfSameShape: the residual is added when the block keeps the shape.
                    var same = Condition.All(Condition.Equal(stride, 1), Condition.Equal(input.C, main.C));
                    if (same != Condition.False)
                        CheckResidual(CheckKind.SameShapeResidual, input.C, main.C, stride, input.H, input.W, main.H, main.W);
                    return new ResidualResult(same, Condition.False, main.C, EquatableArray<LayerPlan>.Empty);
            }
        }

        /// <summary>downsample.0, a 1x1 convolution with the block's stride; downsample.1 (when the main path has a norm), like its last norm before the addition.</summary>
        private IEnumerable<LayerPlan> Projection(Dim inChannels, Dim outChannels, Dim stride)
        {
            var conv = named.Shortcut[0].Spec;
            yield return new ConvPlan(inChannels, outChannels, conv.Kernel, stride, conv.Padding, conv.Groups, conv.Bias);
            if (named.Shortcut.Count < 2) yield break;
            var norm = named.Shortcut[1].Spec;
            Dim groups = 1;
            if (norm.Norm == Kind.GN)
            {
                groups = norm.Groups;
                checks.Add(new SizeCheck(CheckKind.ShortcutNormGroups, new[] { outChannels, groups }.ToEquatableArray(), Site.Always, norm.Location, new Subject(SubjectKind.ShortcutNorm)));
            }
            yield return new NormPlan(Module(norm.Norm, flat: false), outChannels, groups, norm.Eps, norm.Momentum);
        }
    }

    /// <summary>A block's check, once per stage: the checks are compared as objects (each is one layer's), not by their value.</summary>
    private sealed class ReportedComparer : IEqualityComparer<(int Stage, SizeCheck Check)>
    {
        public static readonly ReportedComparer Instance = new();

        public bool Equals((int Stage, SizeCheck Check) x, (int Stage, SizeCheck Check) y) => x.Stage == y.Stage && ReferenceEquals(x.Check, y.Check);

        public int GetHashCode((int Stage, SizeCheck Check) value) => value.Stage * 31 + System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(value.Check);
    }
}
