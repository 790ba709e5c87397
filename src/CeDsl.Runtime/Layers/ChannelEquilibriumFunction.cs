using CeDsl.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Layers;

/// <summary>
/// <see cref="ChannelEquilibrium"/> on the CPU kernels (<see cref="ChannelEquilibriumKernels"/>): the forward
/// pass, and when a gradient is recorded, one autograd node whose backward pass is the kernels' backward pass.
/// </summary>
/// <remarks>
/// TorchSharp's custom functions hand the gradients a backward call returns to libtorch as handles
/// that must outlive the call. They stay alive until the next call of this function on the thread
/// (forward or backward), then are disposed; by then libtorch holds its own references, so a
/// gradient lives as long as libtorch needs it, and only the last backward call's handles outlive
/// the step. The backward pass runs on the thread that called backward (libtorch's engine does so
/// for CPU graphs) and must not throw: an exception cannot cross the native frames of the engine.
/// </remarks>
internal sealed class ChannelEquilibriumFunction : autograd.SingleTensorFunction<ChannelEquilibriumFunction>
{
    private const string CallKey = "call";

    [ThreadStatic]
    private static List<Tensor>? handedOut;

    /// <inheritdoc/>
    public override string Name => nameof(ChannelEquilibrium) + "Backward";

    /// <summary>
    /// Whether the kernels take this call: CPU float32 or float64, the input and every tensor of the module
    /// contiguous and of the input's type, and the per-block d x d statistics (N * C * d values) within
    /// what an array holds, so that no size can fail inside the backward pass.
    /// </summary>
    internal static bool Applies(ChannelEquilibriumKernels.Module module, Tensor input) =>
        CpuKernels.Addressable(input)
        && input.shape[0] * input.shape[1] * module.GroupSize <= Array.MaxLength / 2
        && new[] { module.XWeight, module.Reduce, module.NormWeight, module.NormBias, module.Expand, module.RunningMean, module.RunningWm, module.RunningScale }
            .All(tensor => tensor.dtype == input.dtype && CpuKernels.Addressable(tensor));

    /// <summary>
    /// The module's output for a contiguous input the kernels take (<see cref="Applies"/>).
    /// <paramref name="recompute"/>: the same output with libtorch's operators and without updating the running
    /// statistics, for a backward pass that must itself be differentiable (create_graph).
    /// </summary>
    internal static Tensor Run(ChannelEquilibriumKernels.Module module, Tensor input, bool training, Func<Tensor, Tensor> recompute)
    {
        ReleaseHandedOut();
        var call = new ChannelEquilibriumKernels.Call(module, training, input.shape[0], input.shape[2] * input.shape[3]);
        var output = empty_like(input);
        Tensor[] differentiable = [input, module.XWeight, module.Reduce, module.NormWeight, module.NormBias, module.Expand];
        if (!(is_grad_enabled() && differentiable.Any(tensor => tensor.requires_grad)))
        {
            if (!training && ChannelEquilibriumKernels.EvaluateBySample(call, input, output))
                return output;
            using var scratch = empty(call.Layout.Bytes, ScalarType.Byte);
            ChannelEquilibriumKernels.Forward(call, input, output, scratch);
            return output;
        }

        // The forward pass runs before the node exists, so that a rejected input leaves no node behind.
        var workspace = empty(call.Layout.Bytes, ScalarType.Byte);
        ChannelEquilibriumKernels.Forward(call, input, output, workspace);
        return apply([.. differentiable, new Computed(call, output, workspace, [.. differentiable.Select(tensor => tensor.requires_grad)], recompute)]);
    }

    /// <inheritdoc/>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var computed = (Computed)vars[^1];
        ctx.save_for_backward([(Tensor)vars[0], computed.Workspace, .. vars[1..^1].Cast<Tensor>()]);
        ctx.save_data(CallKey, computed);
        return computed.Output;
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        ReleaseHandedOut();
        var computed = (Computed)ctx.get_data(CallKey);
        var gradients = new List<Tensor>();
        using (NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            Tensor input = saved[0], workspace = saved[1];
            var parameters = saved.Skip(2).ToArray();
            if (is_grad_enabled())
            {
                // A backward pass with create_graph: the kernels' gradients would not be differentiable, so the
                // gradients come from libtorch's operators on the same input and weights.
                gradients.AddRange(Differentiable(computed, input, parameters, grad_output));
                return Handed(gradients, grad_output);
            }
            Tensor? inputGradient = computed.RequiresGradient[0] ? empty_like(input) : null;
            var parameterGradients = parameters.Select(parameter => empty_like(parameter)).ToArray();
            ChannelEquilibriumKernels.Backward(computed.Call, input, grad_output.contiguous(), workspace, inputGradient,
                parameterGradients[0], parameterGradients[1], parameterGradients[2], parameterGradients[3], parameterGradients[4]);
            gradients.Add(inputGradient!);
            for (int i = 0; i < parameters.Length; i++)
                gradients.Add(computed.RequiresGradient[i + 1] ? parameterGradients[i] : null!);
            gradients.Add(null!); // the Computed argument
            return Handed(gradients, grad_output);
        }
    }

    /// <summary>The gradients of the operators' output (recomputed, recording autograd) with respect to the arguments that need them.</summary>
    private static IEnumerable<Tensor> Differentiable(Computed computed, Tensor input, Tensor[] parameters, Tensor outputGradient)
    {
        Tensor[] arguments = [input, .. parameters];
        var wanted = Enumerable.Range(0, arguments.Length).Where(i => computed.RequiresGradient[i]).ToArray();
        var output = computed.Recompute(input);
        var results = autograd.grad([output], [.. wanted.Select(i => arguments[i])], [outputGradient], retain_graph: true, create_graph: true, allow_unused: true);
        var gradients = new Tensor[arguments.Length + 1];
        for (int k = 0; k < wanted.Length; k++)
            gradients[wanted[k]] = results[k];
        return gradients;
    }

    /// <summary>Returns the gradients to TorchSharp, keeping their handles until the next call (see the remarks above).</summary>
    private static List<Tensor> Handed(List<Tensor> gradients, Tensor outputGradient)
    {
        foreach (var gradient in gradients.Where(gradient => gradient is not null))
            gradient.DetachFromDisposeScope();
        outputGradient.Dispose();
        (handedOut ??= []).AddRange(gradients.Where(gradient => gradient is not null));
        return gradients;
    }

    private static void ReleaseHandedOut()
    {
        if (handedOut is not { Count: > 0 })
            return;
        foreach (var gradient in handedOut)
            gradient.Dispose();
        handedOut.Clear();
    }

    /// <summary>
    /// The forward pass's results, handed through <see cref="autograd.Function{T}"/>'s untyped arguments, and
    /// which of the differentiable arguments (input, x_weight, the gate's four weights) need a gradient.
    /// </summary>
    private sealed record Computed(ChannelEquilibriumKernels.Call Call, Tensor Output, Tensor Workspace, bool[] RequiresGradient, Func<Tensor, Tensor> Recompute);
}
