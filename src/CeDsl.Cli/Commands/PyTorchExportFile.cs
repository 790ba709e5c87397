using System.Globalization;
using System.Text;
using CeDsl.IO;
using CeDsl.PyTorch;

namespace CeDsl.Cli.Commands;

/// <summary><c>cedsl export --pytorch FILE.py</c>: the network as a PyTorch module file, written atomically.</summary>
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

    /// <summary>Writes <paramref name="target"/> to <paramref name="path"/> and says what it wrote and how to use it.</summary>
    /// <exception cref="UserException">An operation of the network has no PyTorch form; nothing was written.</exception>
    public static void Write(ExportTarget target, string path, TextWriter output)
    {
        var options = PyTorchExportOptions.For(target.Network, PyTorchExportOptions.InitializationOf(target.Entry.Type));
        string source;
        try
        {
            source = PyTorchExport.ToPython(target.Architecture, options);
        }
        catch (NotSupportedException e)
        {
            throw new UserException($"--pytorch: {target.Description} cannot be written for PyTorch: {e.Message} Nothing was written.", e);
        }
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(source);
        AtomicFile.Write(path, stream => stream.Write(bytes));

        var architecture = target.Architecture;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {path}: {target.Description} as the PyTorch module {options.ClassNames[""]} (input N x {InputShapes.Format(architecture.Input.Dimensions)}, {architecture.State.Count:N0} state-dict entries, {architecture.Parameters:N0} parameters)"));
        string module = Path.GetFileNameWithoutExtension(path);
        output.WriteLine($"use it with the repository's python/ folder on the module path: PYTHONPATH=python python3 -c \"import {module}; model = {module}.create()\"");
        if (target.Checkpoint is { } checkpoint && StateDict.Detect(checkpoint) == StateDict.FileFormat.SafeTensors)
            output.WriteLine($"its weights: cedsl_torch.load_weights(model, \"{checkpoint}\")");
    }
}
