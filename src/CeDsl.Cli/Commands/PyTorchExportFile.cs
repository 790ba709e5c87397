using System.Globalization;
using System.Text;
using CeDsl.IO;
using CeDsl.PyTorch;

namespace CeDsl.Cli.Commands;

/// <summary><c>cedsl export --pytorch FILE.py</c>: the network as a PyTorch module file, prepared in memory, then written atomically.</summary>
internal static class PyTorchExportFile
{
    /// <summary>Checks <paramref name="path"/> before anything is built.</summary>
    /// <exception cref="UserException">It is a directory or does not end in .py.</exception>
    public static void CheckPath(string path)
    {
        if (Directory.Exists(path))
            throw new UserException($"--pytorch: '{path}' is a directory; give the file to write (e.g. {Path.Combine(path, "network.py")}).");
        if (!path.EndsWith(".py", StringComparison.Ordinal))
            throw new UserException($"--pytorch: '{path}' does not end in .py; Python imports module files by that name.");
    }

    /// <summary>The module file's text for <paramref name="target"/>, and the name of its network's class.</summary>
    public sealed record Prepared(ExportTarget Target, string Source, string ClassName);

    /// <summary>The module file of <paramref name="target"/>, in memory (nothing is written yet).</summary>
    /// <exception cref="UserException">An operation of the network has no PyTorch form.</exception>
    public static Prepared Prepare(ExportTarget target)
    {
        var options = PyTorchExportOptions.For(target.Network, PyTorchExportOptions.InitializationOf(target.Entry.Type));
        try
        {
            return new Prepared(target, PyTorchExport.ToPython(target.Architecture, options), options.ClassNames[""]);
        }
        catch (NotSupportedException e)
        {
            throw new UserException($"--pytorch: {target.Description} cannot be written for PyTorch: {e.Message} Nothing was written.", e);
        }
    }

    /// <summary>Writes <paramref name="module"/> to <paramref name="path"/> atomically and says what it wrote and how to use it.</summary>
    public static void Write(Prepared module, string path, TextWriter output)
    {
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(module.Source);
        AtomicFile.Write(path, stream => stream.Write(bytes));

        var target = module.Target;
        var architecture = target.Architecture;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {path}: {target.Description} as the PyTorch module {module.ClassName} (input N x {InputShapes.Format(architecture.Input.Dimensions)}, {architecture.State.Count:N0} state-dict entries, {architecture.Parameters:N0} parameters)"));
        string name = Path.GetFileNameWithoutExtension(path);
        output.WriteLine($"use it with the repository's python/ folder on the module path: PYTHONPATH=python python3 -c \"import {name}; model = {name}.create()\"");
        if (target.Checkpoint is { } checkpoint && StateDict.Detect(checkpoint) == StateDict.FileFormat.SafeTensors)
            output.WriteLine($"its weights: cedsl_torch.load_weights(model, \"{checkpoint}\")");
    }
}
