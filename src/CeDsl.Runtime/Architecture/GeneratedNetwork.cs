using System.Reflection;
using CeDsl.Folding;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Architecture;

/// <summary>
/// A network class the source generator completed from a <see cref="NetworkAttribute"/> declaration, seen
/// through its <see cref="System.Type"/>: how a tool that loads a user's assembly at run time builds the
/// network, its folded form and its architecture. Code that knows the class uses it directly
/// (<c>new CeResNet50()</c>, <c>CeResNet50.Folded</c>, <c>CeResNet50.Architecture</c>).
/// </summary>
public sealed class GeneratedNetwork
{
    private const string ClassesParameter = "classes";
    private const string InChannelsParameter = "inChannels";
    private const string HeightParameter = "inputHeight";
    private const string WidthParameter = "inputWidth";

    private readonly ConstructorInfo constructor;
    private readonly ConstructorInfo foldedConstructor;
    private readonly PropertyInfo architecture;
    private readonly PropertyInfo foldedArchitecture;
    private readonly MethodInfo describe;
    private readonly MethodInfo foldedDescribe;

    private GeneratedNetwork(Type type, NetworkAttribute declaration, Type folded, ConstructorInfo constructor, ConstructorInfo foldedConstructor,
        PropertyInfo architecture, PropertyInfo foldedArchitecture, MethodInfo describe, MethodInfo foldedDescribe)
    {
        this.describe = describe;
        this.foldedDescribe = foldedDescribe;
        Type = type;
        Declaration = declaration;
        FoldedType = folded;
        this.constructor = constructor;
        this.foldedConstructor = foldedConstructor;
        this.architecture = architecture;
        this.foldedArchitecture = foldedArchitecture;
    }

    /// <summary>The generated class, e.g. <c>CeResNet50</c>.</summary>
    public Type Type { get; }

    /// <summary>Its folded inference form, the nested class <c>Fold()</c> returns.</summary>
    public Type FoldedType { get; }

    /// <summary>The class's name, e.g. <c>CeResNet50</c>.</summary>
    public string Name => Type.Name;

    /// <summary>The declaration: declared input, classes, CE placement.</summary>
    public NetworkAttribute Declaration { get; }

    /// <summary>The network's architecture at its declared input and classes (the class's static <c>Architecture</c>).</summary>
    public ModuleArchitecture Architecture => Read(architecture);

    /// <summary>The folded form's architecture (<c>X.Folded.Architecture</c>).</summary>
    public ModuleArchitecture FoldedArchitecture => Read(foldedArchitecture);

    /// <summary>The declared input (C, H, W).</summary>
    public TensorShape Input => Architecture.Input;

    /// <summary>The declared number of classes.</summary>
    public int Classes => Declaration.Classes;

    /// <summary>
    /// The architecture as the constructor builds the network (or its folded form) with these classes and input channels,
    /// for inputs of this height and width (the class's static <c>DescribeArchitecture</c>); the declared values where not given.
    /// </summary>
    /// <exception cref="ArgumentException">The network cannot take that input (the message names the node that cannot), or it
    /// fixes its classes or input channels to other values.</exception>
    public ModuleArchitecture Describe(long? classes = null, TensorShape? input = null, bool folded = false)
    {
        var method = folded ? foldedDescribe : describe;
        var parameters = method.GetParameters();
        Fixed(parameters, ClassesParameter, classes, Classes, "classes");
        Fixed(parameters, InChannelsParameter, input?.Channels, Input.Channels, "input channels");
        var arguments = parameters.Select(parameter => parameter.Name switch
        {
            ClassesParameter => classes ?? parameter.DefaultValue,
            InChannelsParameter => input?.Channels ?? parameter.DefaultValue,
            HeightParameter => input?.Height ?? parameter.DefaultValue,
            WidthParameter => input?.Width ?? parameter.DefaultValue,
            _ => parameter.DefaultValue,
        }).ToArray();
        return (ModuleArchitecture)Unwrapped(() => method.Invoke(null, arguments))!;
    }

    /// <summary>Whether <paramref name="type"/> is a network class the generator completed.</summary>
    public static bool IsGeneratedNetwork(Type type) => Describe(type, out _) is not null;

    /// <summary>The generated network <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="type"/> is not a generated network; the message says what it lacks.</exception>
    public static GeneratedNetwork Of(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return Describe(type, out string? problem) ?? throw new ArgumentException($"{type.FullName} is not a generated CeDsl network: {problem}", nameof(type));
    }

    /// <summary>Every generated network of <paramref name="assembly"/>: its public classes declared with <see cref="NetworkAttribute"/>, by full name.</summary>
    /// <exception cref="ArgumentException">A class declared with <see cref="NetworkAttribute"/> was not completed by the generator (the assembly
    /// was built without the CeDsl package's generator); the message names it.</exception>
    public static IReadOnlyList<GeneratedNetwork> In(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return [.. assembly.GetExportedTypes()
            .Where(type => type.IsDefined(typeof(NetworkAttribute), inherit: false))
            .Select(Of)
            .OrderBy(network => network.Type.FullName, StringComparer.Ordinal)];
    }

    /// <summary>
    /// A new network, as its constructor builds it, with the declared classes and input channels or the given ones.
    /// </summary>
    /// <exception cref="ArgumentException">A count is not positive, or differs from the declared one where the class fixes it
    /// (its constructor takes no <c>classes</c> or <c>inChannels</c>).</exception>
    public nn.Module<Tensor, Tensor> Create(long? classes = null, long? inChannels = null, Device? device = null, ScalarType? dtype = null) =>
        Construct(constructor, classes, inChannels, device, dtype);

    /// <summary>A new, empty folded form, with the same arguments as <see cref="Create"/>: the module to load a folded state dict into.</summary>
    /// <inheritdoc cref="Create" path="/exception"/>
    public nn.Module<Tensor, Tensor> CreateFolded(long? classes = null, long? inChannels = null, Device? device = null, ScalarType? dtype = null) =>
        Construct(foldedConstructor, classes, inChannels, device, dtype);

    /// <inheritdoc/>
    public override string ToString() => Type.FullName ?? Type.Name;

    private nn.Module<Tensor, Tensor> Construct(ConstructorInfo target, long? classes, long? inChannels, Device? device, ScalarType? dtype)
    {
        if (classes is <= 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, $"The number of classes of {Name} must be positive.");
        if (inChannels is <= 0) throw new ArgumentOutOfRangeException(nameof(inChannels), inChannels, $"The input channels of {Name} must be positive.");
        var parameters = target.GetParameters();
        Fixed(parameters, ClassesParameter, classes, Classes, "classes");
        Fixed(parameters, InChannelsParameter, inChannels, Input.Channels, "input channels");
        var arguments = parameters.Select(parameter => parameter.Name switch
        {
            ClassesParameter => classes ?? parameter.DefaultValue,
            InChannelsParameter => inChannels ?? parameter.DefaultValue,
            _ when parameter.ParameterType == typeof(Device) => device,
            _ => dtype,
        }).ToArray();
        return (nn.Module<Tensor, Tensor>)Unwrapped(() => target.Invoke(arguments))!;
    }

    /// <summary>Calls generated code by reflection, rethrowing what it throws as itself.</summary>
    private static object? Unwrapped(Func<object?> call)
    {
        try
        {
            return call();
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    private void Fixed(ParameterInfo[] parameters, string parameter, long? given, long declared, string what)
    {
        if (given is { } value && value != declared && parameters.All(p => p.Name != parameter))
            throw new ArgumentException($"{Name} has {declared} {what}, fixed by its declaration (its constructor takes no {parameter}); got {value}.", parameter);
    }

    private static ModuleArchitecture Read(PropertyInfo property) => (ModuleArchitecture)Unwrapped(() => property.GetValue(null))!;

    private static GeneratedNetwork? Describe(Type type, out string? problem)
    {
        problem = null;
        if (type.GetCustomAttribute<NetworkAttribute>(inherit: false) is not { } declaration)
            return Fail("it has no [Network] attribute", out problem);
        if (!typeof(nn.Module<Tensor, Tensor>).IsAssignableFrom(type) || !typeof(IFoldable).IsAssignableFrom(type))
            return Fail("the generator did not complete it (is the CeDsl package's generator referenced by the project that declares it?)", out problem);
        var folded = type.GetMethod(nameof(IFoldable.Fold), BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes)?.ReturnType;
        if (folded is null || !typeof(nn.Module<Tensor, Tensor>).IsAssignableFrom(folded))
            return Fail("it has no public Fold() returning its folded form", out problem);
        if (NetworkConstructor(type) is not { } constructor || NetworkConstructor(folded) is not { } foldedConstructor)
            return Fail("it has no constructor (classes, inChannels, device, dtype) as generated networks have", out problem);
        if (ArchitectureProperty(type) is not { } architecture || ArchitectureProperty(folded) is not { } foldedArchitecture)
            return Fail("it has no static Architecture", out problem);
        if (DescribeMethod(type) is not { } describe || DescribeMethod(folded) is not { } foldedDescribe)
            return Fail("it has no static DescribeArchitecture(..., inputHeight, inputWidth) whose every argument has a default", out problem);
        return new GeneratedNetwork(type, declaration, folded, constructor, foldedConstructor, architecture, foldedArchitecture, describe, foldedDescribe);
    }

    private static GeneratedNetwork? Fail(string reason, out string problem)
    {
        problem = reason;
        return null;
    }

    /// <summary>The public constructor of a generated network: <c>([long classes], [long inChannels], Device? device, ScalarType? dtype)</c>.</summary>
    private static ConstructorInfo? NetworkConstructor(Type type) =>
        type.GetConstructors().SingleOrDefault(constructor => constructor.GetParameters() is { Length: >= 2 } parameters
            && parameters[^2].ParameterType == typeof(Device) && parameters[^1].ParameterType == typeof(ScalarType?)
            && parameters[..^2].All(p => p.ParameterType == typeof(long) && p.HasDefaultValue && p.Name is ClassesParameter or InChannelsParameter));

    private static MethodInfo? DescribeMethod(Type type) =>
        type.GetMethod("DescribeArchitecture", BindingFlags.Public | BindingFlags.Static) is { } method && method.ReturnType == typeof(ModuleArchitecture)
            && method.GetParameters() is var parameters && parameters.All(p => p.HasDefaultValue)
            && parameters.Any(p => p.Name == HeightParameter) && parameters.Any(p => p.Name == WidthParameter)
            ? method : null;

    private static PropertyInfo? ArchitectureProperty(Type type) =>
        type.GetProperty(nameof(Architecture), BindingFlags.Public | BindingFlags.Static) is { } property && property.PropertyType == typeof(ModuleArchitecture)
            ? property : null;
}
