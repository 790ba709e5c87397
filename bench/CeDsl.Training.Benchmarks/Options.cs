using System.Globalization;

namespace CeDsl.Training.Benchmarks;

/// <summary>One comparison: a network family (resnet20: resnet20 against ce-resnet20), a batch, train or eval.</summary>
internal sealed record BenchCase(string Family, int Batch, bool Training)
{
    public static BenchCase Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 3 || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out int batch) || batch < 2 || parts[2] is not ("train" or "eval"))
            throw new ArgumentException($"Case '{text}': expected family:batch:mode with a batch of at least 2 and mode train or eval, e.g. resnet20:16:train.");
        return new BenchCase(parts[0], batch, parts[2] == "train");
    }

    public string Mode => Training ? "train" : "eval";

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Family}, batch {Batch}, {Mode}");
}

internal sealed record Options(IReadOnlyList<BenchCase> Cases, int Runs, int Iterations, int Threads, bool Operators, bool Floor, string? Markdown, bool Kernels, bool Layers)
{
    public static readonly string DefaultCases = "resnet20:16:train,resnet20:16:eval,resnet20:128:train,resnet18:16:train,resnet50:16:train";

    public static Options Parse(string[] args)
    {
        var options = new Options(ParseCases(DefaultCases), 5, 5, 2, false, false, null, false, false);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            int Positive()
            {
                string name = args[i];
                return int.TryParse(Value(), CultureInfo.InvariantCulture, out int value) && value > 0
                    ? value
                    : throw new ArgumentException($"Option {name} needs a positive integer.");
            }
            options = args[i] switch
            {
                "--cases" => options with { Cases = ParseCases(Value()) },
                "--runs" => options with { Runs = Positive() },
                "--iterations" => options with { Iterations = Positive() },
                "--threads" => options with { Threads = Positive() },
                "--operators" => options with { Operators = true },
                "--floor" => options with { Floor = true },
                "--markdown" => options with { Markdown = Value() },
                "--kernels" => options with { Kernels = true },
                "--layers" => options with { Layers = true },
                _ => throw new ArgumentException($"Unknown option {args[i]}; expected --cases, --runs, --iterations, --threads, --operators, --floor, --markdown, --kernels, --layers."),
            };
        }
        return options;
    }

    private static List<BenchCase> ParseCases(string text) => text.Split(',').Select(BenchCase.Parse).ToList();
}
