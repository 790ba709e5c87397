namespace CeDsl.Python.Tests;

public sealed class PythonTorchTests
{
    [Fact]
    public void PyTorch_is_installed_with_gloo_and_torchrun()
    {
        Assert.Matches(@"^\d+\.\d+", PythonTorch.Version);
        var result = PythonTorch.RunScript("environment.py", TimeSpan.FromMinutes(2));
        Assert.Contains("gloo: True", result.Output);
        Assert.Contains("torchrun: True", result.Output);
    }

    [Fact]
    public void A_python_without_torch_fails_naming_the_package_to_install()
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("The Python tests run on Debian.");
        string directory = Directory.CreateTempSubdirectory("cedsl-python-").FullName;
        try
        {
            string fake = Path.Combine(directory, "python3");
            File.WriteAllText(fake, "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n");
            File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

            var error = Assert.Throws<InvalidOperationException>(() => PythonTorch.CheckInstalled(fake));
            Assert.Contains("No module named 'torch'", error.Message);
            Assert.Contains("python3-torch", error.Message);
            Assert.Contains(PythonTorch.InstallCommand, error.Message);

            var absent = Assert.Throws<InvalidOperationException>(() => PythonTorch.CheckInstalled(Path.Combine(directory, "absent")));
            Assert.Contains("cannot be started", absent.Message);
            Assert.Contains(PythonTorch.InstallCommand, absent.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
