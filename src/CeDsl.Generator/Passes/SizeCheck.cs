using System.Collections.Generic;
using System.Linq;
using CeDsl.Generator.Model;
using CeDsl.Layers;
using D = CeDsl.Generator.DiagnosticDescriptors;

namespace CeDsl.Generator.Passes;

/// <summary>The shape of the tensor between layers: (N, C, H, W), or (N, C) once flattened.</summary>
internal sealed record Shape(bool Flat, Dim C, Dim H, Dim W)
{
    public static Shape Map(Dim c, Dim h, Dim w) => new(false, c, h, w);

    public static Shape Features(Dim c) => new(true, c, Dim.Of(1), Dim.Of(1));

    /// <summary>"8x8x8" or "7 features", for messages.</summary>
    public override string ToString() => Flat ? C + " features" : $"{C}x{H}x{W}";
}

/// <summary>What a size check tests; each kind has its operands and its message (<see cref="SizeCheck.Run"/>).</summary>
internal enum CheckKind
{
    SplitEven,
    ConcatSpatial,
    ShuffleGroups,
    DeclaredIn,
    ConvGroups,
    KernelFits,
    NormGroups,
    InstanceVariance,
    GroupSizeHalved,
    Reduction,
    WindowFits,
    IdentityShortcut,
    ProjectionShortcut,
    SameShapeResidual,
    ShortcutNormGroups,
}

/// <summary>What a size check's message names: a layer, the residual addition, the projection's norm or [Concat].</summary>
internal enum SubjectKind { Layer, Concat, Residual, ShortcutNorm }

/// <summary>The subject of a check's message; inside a network, a block's layers are named by their path in the network.</summary>
internal sealed record Subject(SubjectKind Kind, string Label = "", string? Path = null, string TypeName = "")
{
    public string Describe(string? prefix) => Kind switch
    {
        SubjectKind.Concat => "[Concat]",
        SubjectKind.Residual => $"the residual addition of '{prefix ?? TypeName}'",
        SubjectKind.ShortcutNorm => prefix is null ? "the projection shortcut's norm" : $"the projection shortcut of '{prefix}'",
        _ => Path is null ? "[" + Label + "]" : Label + " '" + (prefix is null ? Path : prefix + "." + Path) + "'",
    };
}

/// <summary>
/// A check of inferred sizes, as data. A block's checks run once with its symbolic sizes (only those that
/// are constant can be decided there) and again per stage inside each network, with the stage's channels,
/// width, stride and spatial size.
/// </summary>
/// <param name="Kind">What is checked.</param>
/// <param name="Operands">The sizes it reads (see <see cref="Run"/> for each kind's).</param>
/// <param name="Site">Whether the checked layer exists only under some placements.</param>
/// <param name="Location">The attribute to report it on (a stage's, inside a network).</param>
/// <param name="Subject">What the message names.</param>
/// <param name="Number">The kernel (fits), the requested group size (halved), 1 for a CE the paper's rule places (reduction).</param>
/// <param name="Padding">The padding (fits).</param>
internal sealed record SizeCheck(CheckKind Kind, EquatableArray<Dim> Operands, Site Site, LocationInfo? Location, Subject Subject, int Number = 0, int Padding = 0)
{
    /// <summary>True when every operand is a constant: the block's own validation already decided it.</summary>
    public bool IsConstant => Operands.All(o => o.IsConstant);

    /// <summary>The diagnostic, or null when the check passes or cannot be decided.</summary>
    /// <param name="environment">The parameters' values (none inside the class itself).</param>
    /// <param name="prefix">For a block inside a network: the block's path ("layer2.0").</param>
    /// <param name="at">For a block inside a network: the stage's location.</param>
    public DiagnosticInfo? Run(IReadOnlyDictionary<Parameter, long> environment, string? prefix = null, LocationInfo? at = null)
    {
        var v = new long[Operands.Count];
        for (int i = 0; i < v.Length; i++)
        {
            if (Operands[i].Evaluate(environment) is not { } value) return null;
            v[i] = value;
        }
        var location = at ?? Location;
        DiagnosticInfo Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, params object[] arguments) => DiagnosticInfo.Create(descriptor, location, arguments);
        string What() => Subject.Describe(prefix);
        switch (Kind)
        {
            case CheckKind.SplitEven:
                return v[0] % 2 == 0 ? null : Report(D.ChannelMismatch, What(), $"{v[0]} channels cannot be split into two equal halves");
            case CheckKind.ConcatSpatial:
                return v[0] == v[2] && v[1] == v[3] ? null
                    : Report(D.ShapeMismatchAtMerge, What(), $"the inputs have different spatial sizes, {v[0]}x{v[1]} and {v[2]}x{v[3]}");
            case CheckKind.ShuffleGroups:
                return v[0] % v[1] == 0 ? null : Report(D.ChannelMismatch, What(), $"{v[0]} channels cannot be shuffled in {v[1]} groups");
            case CheckKind.DeclaredIn:
                return v[0] == v[1] ? null : Report(D.ChannelMismatch, What(), $"it declares In = {v[1]}, but the previous layer gives {v[0]} channels");
            case CheckKind.ConvGroups:
                return v[2] > 0 && v[0] % v[2] == 0 && v[1] % v[2] == 0 ? null
                    : Report(D.ChannelMismatch, What(), $"{v[0]} input and {v[1]} output channels are not both divisible by {v[2]} groups");
            case CheckKind.KernelFits:
                return v[2] >= 1 && v[3] >= 1 ? null
                    : Report(D.SpatialCollapse, What(), $"the {Number}x{Number} kernel (padding {Padding}) does not fit its {v[0]}x{v[1]} input");
            case CheckKind.WindowFits:
                return v[2] >= 1 && v[3] >= 1 ? null
                    : Report(D.SpatialCollapse, What(), $"a {Number}x{Number} window (padding {Padding}) does not fit a {v[0]}x{v[1]} input");
            case CheckKind.NormGroups:
            case CheckKind.ShortcutNormGroups:
                return v[0] % v[1] == 0 ? null
                    : Report(D.ChannelMismatch, What(), $"{v[0]} channels are not divisible by {v[1]} groups; set Groups to a divisor of {v[0]}, such as {NearestDivisor(v[0], v[1])}");
            case CheckKind.InstanceVariance:
                return v[0] * v[1] > 1 ? null
                    : Report(D.SpatialCollapse, What(), $"the instance variance over H*W positions needs a feature map larger than 1x1, but it gets {v[0]}x{v[1]}");
            case CheckKind.GroupSizeHalved:
                if (v[0] <= 0 || v[0] % Number == 0) return null;
                int resolved = GroupSizeRule.Resolve(v[0], Number);
                long groups = v[0] / resolved;
                return Report(D.GroupSizeHalved, Number, What(), v[0], resolved, groups == 1 ? "1 group" : groups + " groups");
            case CheckKind.Reduction:
                return v[1] <= 0 ? null
                    : v[0] < v[1] ? Report(D.ReductionTooLarge, v[1], What(), v[0])
                    : v[0] % v[1] != 0 && Number == 0 ? Report(D.ReductionNotDividing, v[1], What(), v[0], v[0] / v[1])
                    : null;
            case CheckKind.IdentityShortcut:
                // input C, H, W; main path C, H, W; stride
                return v[0] == v[3] && v[1] == v[4] && v[2] == v[5] ? null
                    : Report(D.ShapeMismatchAtMerge, What(), $"the main path gives {v[3]}x{v[4]}x{v[5]}, the identity shortcut {v[0]}x{v[1]}x{v[2]}"
                        + (v[0] != v[3] || v[6] != 1 ? ProjectionHint : ""));
            case CheckKind.ProjectionShortcut:
                return v[0] == v[2] && v[1] == v[3] ? null
                    : Report(D.ShapeMismatchAtMerge, What(), $"the main path gives {v[0]}x{v[1]}, the projection shortcut (stride {v[4]}) {v[2]}x{v[3]}");
            case CheckKind.SameShapeResidual:
                return v[0] != v[1] || v[2] != 1 || (v[3] == v[5] && v[4] == v[6]) ? null
                    : Report(D.ShapeMismatchAtMerge, What(), $"the main path gives {v[1]}x{v[5]}x{v[6]} from a {v[0]}x{v[3]}x{v[4]} input at stride 1");
            default:
                return null;
        }
    }

    /// <summary>The fix of an identity shortcut whose main path changes the channels or the stride.</summary>
    public const string ProjectionHint = "; Residual = Shortcut.Projection adds a 1x1 convolution to the shortcut where the shape changes";

    /// <summary>The divisor of <paramref name="channels"/> nearest <paramref name="groups"/> (the smaller one on a tie).</summary>
    internal static long NearestDivisor(long channels, long groups)
    {
        long best = 1;
        for (long d = 1; d <= channels; d++)
        {
            if (channels % d == 0 && System.Math.Abs(d - groups) < System.Math.Abs(best - groups)) best = d;
        }
        return best;
    }
}
