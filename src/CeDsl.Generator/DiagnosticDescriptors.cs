using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;

namespace CeDsl.Generator;

/// <summary>Every diagnostic the generator reports, documented in docs/diagnostics.md.</summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "CeDsl";

    /// <summary>
    /// The diagnostics page in the repository (CeDslRepositoryUrl of Directory.Build.props, which the packages' metadata
    /// also names), so that a help link opens for a package user too.
    /// </summary>
    public static readonly string HelpPage = typeof(DiagnosticDescriptors).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .First(a => a.Key == "CeDslRepositoryUrl").Value + "/blob/main/docs/diagnostics.md";

    private static DiagnosticDescriptor Error(string id, string title, string message) =>
        new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true, helpLinkUri: HelpLink(id));

    private static DiagnosticDescriptor Warning(string id, string title, string message) =>
        new(id, title, message, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, helpLinkUri: HelpLink(id));

    private static string HelpLink(string id) => HelpPage + "#" + id.ToLowerInvariant();

    public static readonly DiagnosticDescriptor NotPartial = Error("CEDSL001",
        "Block or network class is not partial",
        "'{0}' must be declared partial so that the generator can complete it");

    public static readonly DiagnosticDescriptor MalformedInput = Error("CEDSL002",
        "Malformed network input shape",
        "Network input '{0}' is not a shape CxHxW of positive integers, such as \"3x224x224\"");

    public static readonly DiagnosticDescriptor InvalidValue = Error("CEDSL003",
        "Zero, negative or out-of-range value",
        "{0}");

    public static readonly DiagnosticDescriptor NotAfterNorm = Error("CEDSL004",
        "CE, BD or AII not directly after a normalization",
        "{0} must directly follow a normalization layer ([Norm]), but follows {1}");

    public static readonly DiagnosticDescriptor CENotBeforeActivation = Warning("CEDSL005",
        "CE not followed by an activation",
        "{0} is followed by {1}, not by an activation; CE belongs between a normalization and its ReLU");

    public static readonly DiagnosticDescriptor GroupSizeHalved = Warning("CEDSL006",
        "Group size does not divide the channels",
        "Group size {0} of {1} does not divide its {2} channels; the halving rule uses group size {3} ({4})");

    public static readonly DiagnosticDescriptor ReductionTooLarge = Error("CEDSL007",
        "Reduction larger than the channels",
        "Reduction ratio {0} of {1} is larger than its {2} channels");

    public static readonly DiagnosticDescriptor ReductionNotDividing = Warning("CEDSL008",
        "Reduction does not divide the channels",
        "Reduction ratio {0} of {1} does not divide its {2} channels; the gate has {3} hidden features");

    public static readonly DiagnosticDescriptor ShapeMismatchAtMerge = Error("CEDSL009",
        "Shape mismatch at a residual addition or concatenation",
        "Shape mismatch at {0}: {1}");

    public static readonly DiagnosticDescriptor ChannelMismatch = Error("CEDSL010",
        "Channel mismatch between layers",
        "Channel mismatch at {0}: {1}");

    public static readonly DiagnosticDescriptor SpatialCollapse = Error("CEDSL011",
        "Spatial size collapses",
        "{0}: {1}");

    public static readonly DiagnosticDescriptor NotABlock = Error("CEDSL012",
        "Stage names a type that is not a block",
        "Stage type '{0}' is not a class marked [Block]");

    public static readonly DiagnosticDescriptor DuplicateName = Error("CEDSL013",
        "Duplicate submodule name",
        "Submodule name '{0}' is already used by another layer of '{1}'");

    public static readonly DiagnosticDescriptor InvalidName = Error("CEDSL014",
        "Invalid submodule name",
        "'{0}' is not a valid submodule name: {1}");

    public static readonly DiagnosticDescriptor InvalidStructure = Error("CEDSL015",
        "Invalid layer sequence",
        "{0}");

    public static readonly DiagnosticDescriptor UnsupportedDeclaration = Error("CEDSL016",
        "Unsupported declaration",
        "'{0}' cannot be generated: {1}");

    public static readonly DiagnosticDescriptor StrideParameterOutsideBlock = Error("CEDSL017",
        "From.Parameter outside a block",
        "Stride = From.Parameter takes the stride a stage passes to a block; '{0}' is not a block");

    public static readonly DiagnosticDescriptor StageStrideUnused = Warning("CEDSL018",
        "Stage stride not used by the block",
        "Stage stride {0} is ignored: block '{1}' has no layer with Stride = From.Parameter");

    public static readonly DiagnosticDescriptor OutputNotClasses = Error("CEDSL019",
        "Network output is not the class scores",
        "Network '{0}' ends with {1}, but must end with {2} class scores (a linear layer on flattened features)");

    public static readonly DiagnosticDescriptor OptionIgnored = Warning("CEDSL021",
        "Option has no effect",
        "{0} has no effect: {1}");

    public static readonly DiagnosticDescriptor InputChannelsLast = Warning("CEDSL022",
        "Network input looks like height x width x channels",
        "Network input '{0}' looks like height x width x channels, but Input is channels x height x width; did you mean \"{1}\"?");

    public static readonly DiagnosticDescriptor InternalError = Error("CEDSL020",
        "Internal generator error",
        "The CeDsl generator failed on '{0}' ({1}: {2}); no code was generated for it. Please report this.");
}
