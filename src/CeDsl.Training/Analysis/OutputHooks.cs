using static TorchSharp.torch;

namespace CeDsl.Analysis;

/// <summary>
/// Forward hooks on named modules that see (and may replace) each module's output and count how
/// often each ran; disposing removes every hook, leaving the modules as they were.
/// </summary>
internal sealed class OutputHooks : IDisposable
{
    private readonly List<Hook> _hooks = [];

    /// <param name="name">The module's path, for error messages.</param>
    /// <param name="module">The hooked module.</param>
    /// <param name="onOutput">Gets the output; returns a replacement or null to keep it.</param>
    public void Add(string name, nn.Module<Tensor, Tensor> module, Func<Tensor, Tensor?> onOutput) =>
        Add(name, module, (_, output) => onOutput(output));

    /// <param name="name">The module's path, for error messages.</param>
    /// <param name="module">The hooked module.</param>
    /// <param name="onCall">Gets the input and the output; returns a replacement output or null to keep it.</param>
    public void Add(string name, nn.Module<Tensor, Tensor> module, Func<Tensor, Tensor, Tensor?> onCall)
    {
        var hook = new Hook(name);
        hook.Remover = module.register_forward_hook((_, input, output) =>
        {
            hook.Calls++;
            return onCall(input, output)!;
        });
        _hooks.Add(hook);
    }

    /// <summary>Checks that every hooked module ran <paramref name="expected"/> times since the last check.</summary>
    /// <exception cref="InvalidOperationException">A module ran more or less often: it is shared, or not on the forward path.</exception>
    public void ExpectCalls(long expected, string perWhat)
    {
        foreach (var hook in _hooks)
        {
            if (hook.Calls != expected)
                throw new InvalidOperationException(hook.Calls == 0
                    ? $"Module '{hook.Name}' did not run in the network's forward pass, so it cannot be probed."
                    : $"Module '{hook.Name}' ran {hook.Calls} times for {perWhat} (expected {expected}): a module used at several places of the forward pass cannot be probed; name a module that runs once.");
            hook.Calls = 0;
        }
    }

    public void Dispose()
    {
        foreach (var hook in _hooks)
            hook.Remover?.remove();
        _hooks.Clear();
    }

    private sealed class Hook(string name)
    {
        public string Name { get; } = name;

        public long Calls { get; set; }

        public nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover? Remover { get; set; }
    }
}
