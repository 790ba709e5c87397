using CeDsl.Data;

namespace CeDsl.Training.Tests.Data;

/// <summary>
/// A fact that needs Debian's dataset-fashion-mnist files; skipped (the only allowed skip) when the
/// directory is missing, as on a fresh CI machine without the package.
/// </summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public FashionMnistFactAttribute()
    {
        if (!Directory.Exists(FashionMnist.DebianDirectory))
            Skip = $"{FashionMnist.DebianDirectory} is missing (apt-get install dataset-fashion-mnist)";
    }
}
