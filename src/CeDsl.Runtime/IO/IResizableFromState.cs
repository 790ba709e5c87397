using static TorchSharp.torch;
using Module = TorchSharp.torch.nn.Module;

namespace CeDsl.IO;

/// <summary>
/// A module whose state-dict shapes depend on its trained state, not only on its constructor's
/// arguments (a pruned layer keeps a data-dependent number of channels). <see cref="StateDict.Load"/>
/// and <c>Checkpoint.LoadModel</c> size such modules to the state being loaded before they compare
/// names and shapes, so a freshly constructed network loads a saved smaller one; every other
/// difference still fails the strict comparison.
/// </summary>
public interface IResizableFromState
{
    /// <summary>
    /// Plans how to size this module for <paramref name="state"/> (its keys relative to this module);
    /// nothing changes until the returned plan is applied. Null when the state does not decide the size
    /// (its deciding key is absent): the module keeps its shapes and the comparison reports the difference.
    /// </summary>
    /// <param name="state">The saved tensors under this module's prefix, by relative key.</param>
    /// <param name="name">The module's name in the module being loaded (empty for the root), for error messages.</param>
    /// <exception cref="InvalidDataException">The deciding tensor is invalid; the message names its key.</exception>
    StateResize? PlanResize(IReadOnlyDictionary<string, Tensor> state, string name);
}

/// <summary>How a <see cref="IResizableFromState"/> module will be sized.</summary>
/// <param name="Shapes">The module's state-dict shapes after <paramref name="Apply"/>, by relative key.</param>
/// <param name="Apply">Resizes the module (values are left to the load that follows).</param>
public sealed record StateResize(IReadOnlyDictionary<string, long[]> Shapes, Action Apply);

/// <summary>Sizes the <see cref="IResizableFromState"/> submodules of a module for a state being loaded.</summary>
internal static class StateResizing
{
    /// <summary>
    /// The state-dict shapes <paramref name="root"/> will have once its resizable submodules fit
    /// <paramref name="state"/> (keys relative to <paramref name="root"/>), and the action that resizes them.
    /// </summary>
    /// <exception cref="InvalidDataException">A resizable module's deciding tensor is invalid; the message names <paramref name="source"/> and the key.</exception>
    public static (Dictionary<string, long[]> Shapes, Action Apply) Plan(Module root, IReadOnlyDictionary<string, Tensor> state, string source)
    {
        var shapes = root.state_dict().ToDictionary(entry => entry.Key, entry => entry.Value.shape, StringComparer.Ordinal);
        var plans = new List<StateResize>();
        foreach (var (path, module) in root.named_modules().Prepend(("", root)))
        {
            if (module is not IResizableFromState resizable)
                continue;
            string prefix = path.Length == 0 ? "" : path + ".";
            var own = state.Where(entry => entry.Key.StartsWith(prefix, StringComparison.Ordinal))
                .ToDictionary(entry => entry.Key[prefix.Length..], entry => entry.Value, StringComparer.Ordinal);
            StateResize? plan;
            try
            {
                plan = resizable.PlanResize(own, path);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"'{source}': {e.Message}", e);
            }
            if (plan is null)
                continue;
            foreach (var key in shapes.Keys.Where(key => key.StartsWith(prefix, StringComparison.Ordinal)).ToList())
                shapes.Remove(key);
            foreach (var (key, shape) in plan.Shapes)
                shapes[prefix + key] = shape;
            plans.Add(plan);
        }
        return (shapes, () =>
        {
            foreach (var plan in plans)
                plan.Apply();
        });
    }
}
