using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.PyTorch;

/// <summary>How <see cref="PyTorchExport"/> writes a network's PyTorch module besides what its architecture says.</summary>
public sealed record PyTorchExportOptions
{
    /// <summary>
    /// The Python class name of the network (path <c>""</c>) and of each block, by module path (<c>layer1.0</c> -&gt;
    /// <c>BasicBlock</c>). Without one, the network's class is named after the architecture and blocks <c>Block</c>.
    /// Blocks of one name that differ (with or without <c>downsample</c>) become classes named after the members
    /// only some of them have (<c>BasicBlockWithDownsample</c>).
    /// </summary>
    public IReadOnlyDictionary<string, string> ClassNames { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The module paths of the Sequential containers, or null to take every module whose members run once each,
    /// one after the other, for one (the state dict and the numbers are the same either way).
    /// </summary>
    public IReadOnlySet<string>? Sequentials { get; init; }

    /// <summary>
    /// How the written module initializes its parameters: <see cref="Init.TorchVision"/> as CeDsl's generated
    /// constructors do for it (convolutions Kaiming-normal with fan out, norms 1 and 0); <see cref="Init.Default"/>
    /// leaves PyTorch's own initialization. Weights loaded afterwards replace either.
    /// </summary>
    public Init Initialization { get; init; } = Init.Default;

    /// <summary>
    /// The class names and Sequentials of a built TorchSharp module (the one the architecture describes): each
    /// submodule of a generated block class is named after the class (<c>BasicBlock</c>, <c>BasicBlock.Folded</c> as
    /// <c>BasicBlockFolded</c>); TorchSharp's <c>Sequential</c>s are Sequentials.
    /// </summary>
    /// <param name="module">The network or block.</param>
    /// <param name="initialization">How the network initializes its parameters (its <see cref="NetworkAttribute.Init"/>).</param>
    public static PyTorchExportOptions For(nn.Module module, Init initialization = Init.Default)
    {
        ArgumentNullException.ThrowIfNull(module);
        var names = new Dictionary<string, string>(StringComparer.Ordinal) { [""] = ClassName(module.GetType()) };
        var sequentials = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, child) in module.named_modules())
        {
            if (path.Length == 0) continue;
            var type = child.GetType();
            if (child is TorchSharp.Modules.Sequential)
                sequentials.Add(path);
            else if (IsUserClass(type))
                names[path] = ClassName(type);
        }
        return new PyTorchExportOptions { ClassNames = names, Sequentials = sequentials, Initialization = initialization };
    }

    /// <summary>A class of the network's own assembly (not TorchSharp's modules, not CeDsl's layers).</summary>
    private static bool IsUserClass(Type type) =>
        type.Assembly != typeof(nn.Module).Assembly && type.Assembly != typeof(PyTorchExportOptions).Assembly && type.Assembly != typeof(Init).Assembly;

    /// <summary><c>BasicBlock</c>; a nested class with its declaring classes' names in front (<c>BasicBlock.Folded</c> -&gt; <c>BasicBlockFolded</c>).</summary>
    public static string ClassName(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        string name = type.Name;
        for (var outer = type.DeclaringType; outer is not null; outer = outer.DeclaringType)
            name = outer.Name + name;
        return PythonSource.Identifier(name);
    }

    /// <summary>The <see cref="NetworkAttribute.Init"/> a generated network class was declared with (<see cref="Init.TorchVision"/> when none is found).</summary>
    public static Init InitializationOf(Type network)
    {
        ArgumentNullException.ThrowIfNull(network);
        for (var type = network; type is not null; type = type.DeclaringType)
        {
            if (type.GetCustomAttribute<NetworkAttribute>() is { } attribute) return attribute.Init;
            if (type.GetCustomAttribute<BlockAttribute>() is { } block) return block.Init;
        }
        return new NetworkAttribute().Init;
    }
}
