using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using CeDsl.Generator.Model;
using CeDsl.Layers;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Validation;

/// <summary>
/// Shape inference: every channel count and spatial size from the input (the network's declared
/// input, or a block's symbolic inChannels x h x w), with the checks each layer needs.
/// </summary>
internal sealed partial class ClassBuilder
{
    private const int FromParameter = -1;
    private const string CeReduction = "ceReduction";

    private Dim strideProduct = Dim.Of(1);
    private readonly List<(BlockInstance Instance, BuildResult Block, string Path)> instances = new();
    private string? residualCondition;
    private string? shapeCheckCondition;
    private Dim residualChannels = Dim.Of(0);
    private bool usesClasses;

    // Network convolutions that read the declared input directly: they take the constructor's
    // inChannels unless another layer also depends on the input's channel count.
    private readonly List<Step> inputConvolutions = new();
    private bool inputChannelsFixed;

    private static string Size(Shape shape) => shape.Flat ? shape.C + " features" : $"{shape.C}x{shape.H}x{shape.W}";

    private static string Describe(Step step, string? prefix) =>
        prefix is null ? step.Describe() : step.Label + " '" + prefix + "." + step.Path + "'";

    private void AddCheck(Step step, Dim[] operands, Func<long[], string, LocationInfo?, DiagnosticInfo?> evaluate) =>
        result.Checks.Add(new Check(step.Site, step.Spec.Location, prefix => Describe(step, prefix), operands, evaluate));

    private void AddCheck(LocationInfo? location, Func<string?, string> describe, Dim[] operands, Func<long[], string, LocationInfo?, DiagnosticInfo?> evaluate) =>
        result.Checks.Add(new Check(Site.Always, location, describe, operands, evaluate));

    private bool Invalid(Step step, string message)
    {
        Report(D.InvalidValue, step.Spec.Location, message);
        return false;
    }

    private Shape? Infer(Shape input)
    {
        var current = input;
        Shape? bypass = null;
        Shape? forkInput = null;
        var branchOutputs = new List<Shape>();
        LayerSpec? addSpec = null;

        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (step.Dropped) continue;
            if (isNetwork && ReferenceEquals(current, input) && step.Kind is LayerKind.Split or LayerKind.Shuffle or LayerKind.Concat or LayerKind.Add)
                inputChannelsFixed = true;
            switch (step.Kind)
            {
                case LayerKind.Split:
                    if (current.Flat) return Structure(step, "[Split] needs a feature map (N, C, H, W)");
                    AddCheck(step, new[] { current.C }, (v, what, at) => v[0] % 2 == 0 ? null
                        : DiagnosticInfo.Create(D.ChannelMismatch, at, what, $"{v[0]} channels cannot be split into two equal halves"));
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
                        var first = parts[0];
                        AddCheck(step.Spec.Location, _ => "[Concat]", new[] { first.H, first.W, part.H, part.W }, (v, what, at) =>
                            v[0] == v[2] && v[1] == v[3] ? null
                            : DiagnosticInfo.Create(D.ShapeMismatchAtMerge, at, what, $"the inputs have different spatial sizes, {v[0]}x{v[1]} and {v[2]}x{v[3]}"));
                        joined = joined with { C = joined.C + part.C };
                    }
                    current = joined;
                    break;

                case LayerKind.Shuffle:
                    if (current.Flat) return Structure(step, "[Shuffle] needs a feature map (N, C, H, W)");
                    if (step.Spec.Groups <= 0) return InvalidShape(step, $"Groups of Shuffle must be positive (got {step.Spec.Groups})");
                    AddCheck(step, new[] { current.C, Dim.Of(step.Spec.Groups) }, (v, what, at) => v[0] % v[1] == 0 ? null
                        : DiagnosticInfo.Create(D.ChannelMismatch, at, what, $"{v[0]} channels cannot be shuffled in {v[1]} groups"));
                    break;

                case LayerKind.Add:
                    addSpec = step.Spec;
                    if (!Residual(input, current, step.Spec.Location)) return null;
                    break;

                default:
                    if (isNetwork && ReferenceEquals(current, input) && !inputChannelsFixed)
                    {
                        if (step.Kind == LayerKind.Conv && !step.Spec.Depthwise && step.Spec.Groups == 1 && step.Spec.In == 0) inputConvolutions.Add(step);
                        else if (step.Kind is not (LayerKind.ReLU or LayerKind.ReLU6 or LayerKind.Dropout)) inputChannelsFixed = true;
                    }
                    var next = InferLayer(step, current);
                    if (next is null) return null;
                    current = next;
                    break;
            }
        }

        if (!isNetwork && block!.Residual != ShortcutKind.None && addSpec is null && !Residual(input, current, classLocation)) return null;

        if (isNetwork)
        {
            var classes = network!.Classes;
            if (!current.Flat || current.C.Constant != classes)
            {
                Report(D.OutputNotClasses, classLocation, type.Name, Size(current), classes);
                return null;
            }
        }
        return current;
    }

    private Shape? Structure(Step step, string message)
    {
        Report(D.InvalidStructure, step.Spec.Location, message);
        return null;
    }

    private Shape? InvalidShape(Step step, string message)
    {
        Report(D.InvalidValue, step.Spec.Location, message);
        return null;
    }

    private Shape? InferLayer(Step step, Shape x)
    {
        var spec = step.Spec;
        switch (step.Kind)
        {
            case LayerKind.Conv:
            case LayerKind.SelectConv:
                return InferConv(step, x);
            case LayerKind.Norm: return InferNorm(step, x);
            case LayerKind.CE:
            case LayerKind.BD:
            case LayerKind.AII:
            case LayerKind.SE:
                return InferChannelAttention(step, x);
            case LayerKind.ReLU:
            case LayerKind.ReLU6:
                step.Leaf = new LeafPlan(step.Kind);
                return x;
            case LayerKind.MaxPool:
            case LayerKind.AvgPool:
                return InferPool(step, x);
            case LayerKind.GlobalAvgPool:
                if (x.Flat) return Structure(step, "[GlobalAvgPool] needs a feature map (N, C, H, W)");
                if (spec.Size <= 0) return InvalidShape(step, $"Size of GlobalAvgPool must be positive (got {spec.Size})");
                step.Leaf = new LeafPlan(LayerKind.GlobalAvgPool) { Size = spec.Size };
                return Shape.Map(x.C, spec.Size, spec.Size);
            case LayerKind.Flatten:
                if (!x.Flat && (x.H.Uses(Dim.Height) || x.W.Uses(Dim.WidthSpatial)))
                    return Structure(step, "a block does not know its input's spatial size, so it can only [Flatten] after [GlobalAvgPool]");
                step.Leaf = new LeafPlan(LayerKind.Flatten);
                return Shape.Features(x.Flat ? x.C : x.C * x.H * x.W);
            case LayerKind.Linear:
                return InferLinear(step, x);
            case LayerKind.Dropout:
                if (spec.P < 0 || spec.P >= 1) return InvalidShape(step, $"P of Dropout must be in [0, 1) (got {spec.P.ToString(CultureInfo.InvariantCulture)})");
                step.Leaf = new LeafPlan(LayerKind.Dropout) { P = spec.P };
                return x;
            case LayerKind.Block:
                return InferBlock(step, x);
            default:
                return Structure(step, $"[{step.Kind}] is not a layer");
        }
    }

    private Shape? InferConv(Step step, Shape x)
    {
        var spec = step.Spec;
        bool selective = step.Kind == LayerKind.SelectConv;
        var what = selective ? "SelectConv" : "Conv";
        if (x.Flat) return Structure(step, $"[{what}] needs a feature map (N, C, H, W), but the input is flattened");
        bool valid = true;
        if (spec.Kernel <= 0) valid = Invalid(step, $"Kernel of {what} must be positive (got {spec.Kernel})");
        if (spec.Stride == 0 || spec.Stride < FromParameter) valid = Invalid(step, $"Stride of {what} must be positive or From.Parameter (got {spec.Stride})");
        if (spec.Padding < -1) valid = Invalid(step, $"Padding of {what} must not be negative (got {spec.Padding})");
        if (spec.Groups <= 0) valid = Invalid(step, $"Groups of Conv must be positive (got {spec.Groups})");
        if (spec.Out < 0 || spec.Expand < 0 || spec.ExpandInput < 0 || spec.In < 0)
            valid = Invalid(step, $"Out, Expand, ExpandInput and In of {what} must not be negative");
        if ((spec.Out > 0 ? 1 : 0) + (spec.Expand > 0 ? 1 : 0) + (spec.ExpandInput > 0 ? 1 : 0) > 1)
            valid = Invalid(step, $"{what} takes at most one of Out, Expand and ExpandInput");
        if (spec.Depthwise && spec.Groups != 1)
            valid = Invalid(step, "a Depthwise Conv has one group per input channel; do not set Groups");
        if (selective)
        {
            if (!(spec.Gamma >= 0 && spec.Gamma < 1)) valid = Invalid(step, $"Gamma of SelectConv must be in [0, 1) (got {spec.Gamma.ToString(CultureInfo.InvariantCulture)})");
            if (spec.K < 0) valid = Invalid(step, $"K of SelectConv must not be negative (got {spec.K}; 0 prunes only)");
            if (spec.NMax < 0) valid = Invalid(step, $"NMax of SelectConv must not be negative (got {spec.NMax}; 0 means no cap)");
            if (!(spec.P >= 0 && spec.P < 1)) valid = Invalid(step, $"Dropout of SelectConv must be in [0, 1) (got {spec.P.ToString(CultureInfo.InvariantCulture)})");
        }
        if (isNetwork && spec.Expand > 0)
        {
            Report(D.InvalidStructure, spec.Location, "Expand multiplies a block's width; a network's own convolution states Out");
            valid = false;
        }
        Dim stride = spec.Stride;
        if (spec.Stride == FromParameter)
        {
            if (isNetwork)
            {
                Report(D.StrideParameterOutsideBlock, spec.Location, type.Name);
                valid = false;
            }
            else
            {
                stride = Dim.Var(Dim.Stride);
                result.UsesStride = true;
            }
        }
        if (!valid) return null;

        int padding = spec.Padding == -1 ? spec.Kernel / 2 : spec.Padding;
        Dim groups = spec.Depthwise ? x.C : spec.Groups;
        Dim output =
            spec.Out > 0 ? spec.Out :
            spec.Expand > 0 ? Dim.Var(Dim.Width) * spec.Expand :
            spec.ExpandInput > 0 ? x.C * spec.ExpandInput :
            spec.Depthwise || isNetwork ? x.C :
            Dim.Var(Dim.Width);

        if (spec.In > 0)
        {
            AddCheck(step, new[] { x.C, Dim.Of(spec.In) }, (v, what, at) => v[0] == v[1] ? null
                : DiagnosticInfo.Create(D.ChannelMismatch, at, what, $"it declares In = {v[1]}, but the previous layer gives {v[0]} channels"));
        }
        AddCheck(step, new[] { x.C, output, groups }, (v, what, at) => v[2] > 0 && v[0] % v[2] == 0 && v[1] % v[2] == 0 ? null
            : DiagnosticInfo.Create(D.ChannelMismatch, at, what, $"{v[0]} input and {v[1]} output channels are not both divisible by {v[2]} groups"));
        var h = (x.H + 2 * padding - spec.Kernel) / stride + 1;
        var w = (x.W + 2 * padding - spec.Kernel) / stride + 1;
        AddCheck(step, new[] { x.H, x.W, h, w }, (v, what, at) => v[2] >= 1 && v[3] >= 1 ? null
            : DiagnosticInfo.Create(D.SpatialCollapse, at, what, $"the {spec.Kernel}x{spec.Kernel} kernel (padding {padding}) does not fit its {v[0]}x{v[1]} input"));

        if (!step.Shared)
        {
            step.Leaf = selective
                ? new LeafPlan(LayerKind.SelectConv) { In = x.C, Out = output, Kernel = spec.Kernel, Stride = stride, Padding = padding, Gamma = spec.Gamma, K = spec.K, NMax = spec.NMax, P = spec.P }
                : new LeafPlan(LayerKind.Conv) { In = x.C, Out = output, Kernel = spec.Kernel, Stride = stride, Padding = padding, Groups = groups, Bias = spec.Bias };
        }
        strideProduct *= stride;
        return Shape.Map(output, h, w);
    }

    private Shape? InferNorm(Step step, Shape x)
    {
        var spec = step.Spec;
        if (spec.Eps <= 0) return InvalidShape(step, $"Eps of Norm must be positive (got {spec.Eps.ToString(CultureInfo.InvariantCulture)})");
        if (spec.Momentum < 0 || spec.Momentum > 1) return InvalidShape(step, $"Momentum of Norm must be in [0, 1] (got {spec.Momentum.ToString(CultureInfo.InvariantCulture)})");
        if (x.Flat && spec.Norm is NormKind.GN or NormKind.IN)
            return Structure(step, $"[Norm(Kind.{spec.Norm})] needs a feature map (N, C, H, W); flattened features take BN or LN");
        Dim groups = 1;
        if (spec.Norm == NormKind.GN)
        {
            if (spec.Groups <= 0) return InvalidShape(step, $"Groups of Norm(Kind.GN) must be positive (got {spec.Groups})");
            groups = spec.Groups;
            AddCheck(step, new[] { x.C, groups }, (v, what, at) => v[0] % v[1] == 0 ? null
                : DiagnosticInfo.Create(D.ChannelMismatch, at, what, $"{v[0]} channels are not divisible by {v[1]} groups"));
        }
        step.Leaf = new LeafPlan(LayerKind.Norm) { Norm = spec.Norm, Flat = x.Flat, In = x.C, Groups = groups, Eps = spec.Eps, Momentum = spec.Momentum };
        return x;
    }

    private Shape? InferChannelAttention(Step step, Shape x)
    {
        var spec = step.Spec;
        var kind = step.Kind;
        if (x.Flat) return Structure(step, $"[{kind}] needs a feature map (N, C, H, W)");
        bool usesGroups = kind is LayerKind.CE or LayerKind.BD;
        bool usesReduction = kind is LayerKind.CE or LayerKind.AII or LayerKind.SE;
        int groupSize = spec.GroupSize, reduction = spec.R;
        if (step.PlacedGroupSize is not null)
        {
            int.TryParse(step.PlacedGroupSize, NumberStyles.None, CultureInfo.InvariantCulture, out groupSize);
            int.TryParse(step.PlacedReduction, NumberStyles.None, CultureInfo.InvariantCulture, out reduction);
        }
        else
        {
            bool valid = true;
            if (usesGroups && groupSize <= 0) valid = Invalid(step, $"GroupSize of {kind} must be positive (got {groupSize})");
            if (usesReduction && reduction <= 0) valid = Invalid(step, $"R of {kind} must be positive (got {reduction})");
            if (usesGroups && spec.Iterations <= 0) valid = Invalid(step, $"Iterations of {kind} must be positive (got {spec.Iterations})");
            if (!valid) return null;
        }

        if (kind is LayerKind.CE or LayerKind.AII)
        {
            AddCheck(step, new[] { x.H, x.W }, (v, what, at) => v[0] * v[1] > 1 ? null
                : DiagnosticInfo.Create(D.SpatialCollapse, at, what, $"the instance variance over H*W positions needs a feature map larger than 1x1, but it gets {v[0]}x{v[1]}"));
        }
        if (usesGroups && !spec.Placed && groupSize > 0)
        {
            AddCheck(step, new[] { x.C }, (v, what, at) =>
            {
                if (v[0] <= 0 || v[0] % groupSize == 0) return null;
                int resolved = GroupSizeRule.Resolve(v[0], groupSize);
                long groups = v[0] / resolved;
                return DiagnosticInfo.Create(D.GroupSizeHalved, at, groupSize, what, v[0], resolved, groups == 1 ? "1 group" : groups + " groups");
            });
        }
        if (usesReduction)
        {
            // A CE the paper's rule puts in a block takes its reduction from the constructor.
            Dim reductionSize = step.PlacedReduction == "ceReduction" ? Dim.Var(CeReduction) : reduction;
            bool placed = spec.Placed;
            AddCheck(step, new[] { x.C, reductionSize }, (v, what, at) =>
                v[1] <= 0 ? null
                : v[0] < v[1] ? DiagnosticInfo.Create(D.ReductionTooLarge, at, v[1], what, v[0])
                : v[0] % v[1] != 0 && !placed ? DiagnosticInfo.Create(D.ReductionNotDividing, at, v[1], what, v[0], v[0] / v[1])
                : null);
        }

        step.Leaf = new LeafPlan(kind)
        {
            In = x.C,
            GroupSize = step.PlacedGroupSize ?? groupSize.ToString(CultureInfo.InvariantCulture),
            Reduction = step.PlacedReduction ?? reduction.ToString(CultureInfo.InvariantCulture),
            Iterations = spec.Iterations,
        };
        return x;
    }

    private Shape? InferPool(Step step, Shape x)
    {
        var spec = step.Spec;
        if (x.Flat) return Structure(step, $"[{step.Kind}] needs a feature map (N, C, H, W)");
        bool valid = true;
        if (spec.Kernel <= 0) valid = Invalid(step, $"Kernel of {step.Kind} must be positive (got {spec.Kernel})");
        if (spec.Stride < 0) valid = Invalid(step, $"Stride of {step.Kind} must be positive (got {spec.Stride})");
        if (spec.Padding < -1) valid = Invalid(step, $"Padding of {step.Kind} must not be negative (got {spec.Padding})");
        if (!valid) return null;
        int stride = spec.Stride == 0 ? spec.Kernel : spec.Stride;
        int padding = spec.Padding == -1 ? (spec.Kernel - 1) / 2 : spec.Padding;
        if (padding > spec.Kernel / 2) return InvalidShape(step, $"Padding of {step.Kind} must be at most half the window (kernel {spec.Kernel}, padding {padding})");

        var h = (x.H + 2 * padding - spec.Kernel) / stride + 1;
        var w = (x.W + 2 * padding - spec.Kernel) / stride + 1;
        AddCheck(step, new[] { x.H, x.W, h, w }, (v, what, at) => v[2] >= 1 && v[3] >= 1 ? null
            : DiagnosticInfo.Create(D.SpatialCollapse, at, what, $"a {spec.Kernel}x{spec.Kernel} window (padding {padding}) does not fit a {v[0]}x{v[1]} input"));
        if (!step.Shared)
            step.Leaf = new LeafPlan(step.Kind) { Kernel = spec.Kernel, Stride = stride, Padding = padding };
        strideProduct *= stride;
        return Shape.Map(x.C, h, w);
    }

    private Shape? InferLinear(Step step, Shape x)
    {
        var spec = step.Spec;
        if (!x.Flat) return Structure(step, "[Linear] needs flattened features; add [Flatten] before it (after [GlobalAvgPool])");
        if (spec.Out < 0) return InvalidShape(step, $"Out of Linear must be positive (got {spec.Out})");
        if (spec.InitStd < 0) return InvalidShape(step, $"InitStd of Linear must not be negative (got {spec.InitStd.ToString(CultureInfo.InvariantCulture)})");
        if (x.C.Uses(Dim.Height) || x.C.Uses(Dim.WidthSpatial))
            return Structure(step, "a block does not know its spatial size: flatten after [GlobalAvgPool] so that [Linear] gets a known number of features");
        Dim output;
        bool fromClasses = false;
        if (spec.Out > 0) output = spec.Out;
        else if (isNetwork)
        {
            output = network!.Classes;
            fromClasses = true;
            usesClasses = true;
        }
        else return Structure(step, "[Linear] in a block needs Out (only a network's Linear defaults to its Classes)");
        step.Leaf = new LeafPlan(LayerKind.Linear) { In = x.C, Out = output, Bias = spec.Bias, InitStd = spec.InitStd, UsesClasses = fromClasses };
        return Shape.Features(output);
    }

    private Shape? InferBlock(Step step, Shape x)
    {
        var instance = step.Instance!;
        var stage = step.Spec.Stage!;
        var built = buildBlock!(instance.Block);
        if (built.HasErrors || built.Output is null || built.Plan is null)
        {
            // The block's own diagnostics explain it; the network is not generated until the block is.
            blockFailed = true;
            return null;
        }
        if (x.Flat) return Structure(step, "a stage needs a feature map (N, C, H, W)");

        var environment = new Dictionary<string, long>
        {
            [Dim.InChannels] = x.C.Constant!.Value,
            [Dim.Width] = stage.Out,
            [Dim.Stride] = instance.Stride,
            [Dim.Height] = x.H.Constant!.Value,
            [Dim.WidthSpatial] = x.W.Constant!.Value,
            [CeReduction] = network!.CEReduction,
        };
        var prefix = step.Path!;
        if (instance.Index == 0 && instance.Stride != 1 && !built.UsesStride)
            Report(D.StageStrideUnused, step.Spec.Location, instance.Stride, instance.Block.Type.Name);

        foreach (var check in built.Checks)
        {
            if (check.IsConstant) continue;
            if (check.Site == Site.Rule && instance.Placement != PlacementKind.Paper) continue;
            if (check.Site == Site.Explicit && instance.Placement == PlacementKind.None) continue;
            if (!reportedChecks.Add((instance.Stage, check))) continue;
            if (check.Run(environment, prefix, step.Spec.Location) is { } diagnostic)
                result.Diagnostics.Add(diagnostic);
            else
                reportedChecks.Remove((instance.Stage, check));
        }

        var output = built.Output;
        var c = output.C.Evaluate(environment);
        var h = output.H.Evaluate(environment);
        var w = output.W.Evaluate(environment);
        if (c is null || h is null || w is null) return Structure(step, $"the output size of block '{instance.Block.Type.Name}' cannot be computed");

        var arguments = new List<string>
        {
            "inChannels: " + x.C.Constant.Value.ToString(CultureInfo.InvariantCulture),
            "width: " + stage.Out.ToString(CultureInfo.InvariantCulture),
        };
        if (built.UsesStride) arguments.Add("stride: " + instance.Stride.ToString(CultureInfo.InvariantCulture));
        if (built.HasPlacement) arguments.Add("placement: Placement." + instance.Placement);
        if (built.HasRuleSites && instance.Placement == PlacementKind.Paper)
        {
            arguments.Add("ceGroupSize: " + network!.CEGroupSize.ToString(CultureInfo.InvariantCulture));
            arguments.Add("ceReduction: " + network.CEReduction.ToString(CultureInfo.InvariantCulture));
        }
        var blockType = instance.Block.Type;
        step.Leaf = new LeafPlan(LayerKind.Block)
        {
            BlockType = blockType.Namespace == type.Namespace ? blockType.Name : blockType.GlobalName,
            BlockArguments = string.Join(", ", arguments),
        };
        instances.Add((instance, built, prefix));
        return output.Flat ? Shape.Features(c.Value) : Shape.Map(c.Value, h.Value, w.Value);
    }

    private readonly HashSet<(int, Check)> reportedChecks = new();
    private bool blockFailed;

    /// <summary>Decides a == b when it can: true, false, or null for "depends on the parameters".</summary>
    private static bool? Same(Dim a, Dim b) =>
        a == b ? true : a.IsConstant && b.IsConstant ? a.Constant == b.Constant : null;

    private static string Condition(params (bool? Known, string Code)[] terms)
    {
        // An "or" of "differs" terms; a known-true term decides it, known-false terms drop out.
        if (terms.Any(t => t.Known == true)) return "true";
        var open = terms.Where(t => t.Known is null).Select(t => t.Code).ToList();
        return open.Count == 0 ? "false" : string.Join(" || ", open);
    }

    private bool Residual(Shape input, Shape main, LocationInfo? location)
    {
        var kind = block!.Residual;
        if (main.Flat)
        {
            Report(D.InvalidStructure, location, "the residual addition needs a feature map (N, C, H, W)");
            return false;
        }
        var stride = strideProduct;
        var sameStride = Same(stride, 1);
        var sameChannels = Same(input.C, main.C);
        var differs = Condition(
            (sameStride is null ? null : !sameStride, stride.ToCSharp() + " != 1"),
            (sameChannels is null ? null : !sameChannels, input.C.ToCSharp() + " != " + main.C.ToCSharp()));
        string where = $"the residual addition of '{type.Name}'";

        switch (kind)
        {
            case ShortcutKind.Identity:
                AddCheck(location, p => p is null ? where : $"the residual addition of '{p}'", new[] { input.C, input.H, input.W, main.C, main.H, main.W }, (v, what, at) =>
                    v[0] == v[3] && v[1] == v[4] && v[2] == v[5] ? null
                    : DiagnosticInfo.Create(D.ShapeMismatchAtMerge, at, what, $"the main path gives {v[3]}x{v[4]}x{v[5]}, the identity shortcut {v[0]}x{v[1]}x{v[2]}"));
                if (differs == "true")
                {
                    Report(D.ShapeMismatchAtMerge, location, where,
                        $"an identity shortcut needs the main path to keep the input's shape, but it gives {main.C.ToCSharp()} channels from {input.C.ToCSharp()} at stride {stride.ToCSharp()}");
                    return false;
                }
                shapeCheckCondition = differs == "false" ? null : differs;
                residualChannels = main.C;
                break;

            case ShortcutKind.Projection:
                residualCondition = differs;
                if (differs == "false") break;
                var h = (input.H - 1) / stride + 1;
                var w = (input.W - 1) / stride + 1;
                AddCheck(location, p => p is null ? where : $"the residual addition of '{p}'", new[] { main.H, main.W, h, w, stride }, (v, what, at) =>
                    v[0] == v[2] && v[1] == v[3] ? null
                    : DiagnosticInfo.Create(D.ShapeMismatchAtMerge, at, what, $"the main path gives {v[0]}x{v[1]}, the projection shortcut (stride {v[4]}) {v[2]}x{v[3]}"));
                AddDownsample(input.C, main.C, stride);
                break;

            case ShortcutKind.IdentityIfSameShape:
                // The residual is used when the block keeps the shape: an "and" of "same" terms.
                if (sameStride == false || sameChannels == false) residualCondition = "false";
                else
                {
                    var terms = new List<string>();
                    if (sameStride is null) terms.Add(stride.ToCSharp() + " == 1");
                    if (sameChannels is null) terms.Add(input.C.ToCSharp() + " == " + main.C.ToCSharp());
                    residualCondition = terms.Count == 0 ? "true" : string.Join(" && ", terms);
                }
                if (residualCondition != "false")
                {
                    AddCheck(location, p => p is null ? where : $"the residual addition of '{p}'", new[] { input.C, main.C, stride, input.H, input.W, main.H, main.W }, (v, what, at) =>
                        v[0] != v[1] || v[2] != 1 || (v[3] == v[5] && v[4] == v[6]) ? null
                        : DiagnosticInfo.Create(D.ShapeMismatchAtMerge, at, what, $"the main path gives {v[1]}x{v[5]}x{v[6]} from a {v[0]}x{v[3]}x{v[4]} input at stride 1"));
                }
                break;
        }
        return true;
    }

    private void AddDownsample(Dim inChannels, Dim outChannels, Dim stride)
    {
        var conv = downsample[0];
        conv.Leaf = new LeafPlan(LayerKind.Conv) { In = inChannels, Out = outChannels, Kernel = 1, Stride = stride, Padding = 0 };
        if (downsample.Count > 1)
        {
            var norm = residualNorm!;
            downsample[1].Leaf = new LeafPlan(LayerKind.Norm)
            {
                Norm = norm.Norm,
                In = outChannels,
                Groups = norm.Norm == NormKind.GN ? norm.Groups : 1,
                Eps = norm.Eps,
                Momentum = norm.Momentum,
            };
            if (norm.Norm == NormKind.GN)
            {
                AddCheck(norm.Location, p => p is null ? "the projection shortcut's norm" : $"the projection shortcut of '{p}'", new[] { outChannels, Dim.Of(norm.Groups) }, (v, what, at) =>
                    v[0] % v[1] == 0 ? null : DiagnosticInfo.Create(D.ChannelMismatch, at, what, $"{v[0]} channels are not divisible by {v[1]} groups"));
            }
        }
    }
}
