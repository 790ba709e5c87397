using System.Reflection;
using System.Reflection.Emit;
using CeDsl.Folding;
using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Folding;

/// <summary>
/// The folded CE does no covariance or Newton work, by construction: its forward cannot reach the
/// whitening code, and nothing it holds depends on the Newton iteration count.
/// </summary>
public class FoldedWorkTests
{
    /// <summary>Types whose code computes covariances, Newton iterations or the unfolded layers' forward passes.</summary>
    private static readonly Type[] Forbidden =
    {
        typeof(ChannelEquilibrium).Assembly.GetType("CeDsl.Layers.Whitening", throwOnError: true)!,
        typeof(ChannelEquilibrium).Assembly.GetType("CeDsl.Layers.InstanceMoments", throwOnError: true)!,
        typeof(ChannelEquilibrium).Assembly.GetType("CeDsl.Kernels.ChannelEquilibriumKernels", throwOnError: true)!,
        typeof(ChannelEquilibrium).Assembly.GetType("CeDsl.Layers.ChannelEquilibriumFunction", throwOnError: true)!,
        typeof(ChannelEquilibrium), typeof(BatchDecorrelation), typeof(AdaptiveInstanceInverse),
    };

    private static readonly string[] ForbiddenTorchMethods = { "matrix_power", "matrix_exp", "inv", "pinv", "cholesky", "svd", "eigh", "solve", "cov", "baddbmm" };

    [Theory]
    [InlineData(typeof(FoldedChannelEquilibrium), "matmul")]
    [InlineData(typeof(FoldedAdaptiveInstanceInverse), "bmm")]
    [InlineData(typeof(FoldedChain), "call")]
    public void The_folded_forward_cannot_reach_covariance_or_Newton_code(Type folded, string expectedCall)
    {
        var forward = folded.GetMethod("forward", new[] { typeof(Tensor) })!;

        var reached = Reachable(forward).ToList();

        Assert.Contains(reached, method => method.Name == expectedCall);
        Assert.Empty(reached.Where(IsForbidden).Select(method => $"{method.DeclaringType}.{method.Name}"));
    }

    [Fact]
    public void The_scan_finds_the_whitening_code_in_the_unfolded_forward()
    {
        var forward = typeof(ChannelEquilibrium).GetMethod("forward", new[] { typeof(Tensor) })!;

        var reached = Reachable(forward).ToList();

        // The operators (Whitening, InstanceMoments) and the CPU kernels' Newton iterations.
        Assert.Contains(reached, method => method.DeclaringType == Forbidden[0]);
        Assert.Contains(reached, method => method.DeclaringType == Forbidden[1]);
        Assert.Contains(reached, method => method.DeclaringType == Forbidden[2] && method.Name == "Forward");
        Assert.Contains(reached, method => method.DeclaringType?.DeclaringType == Forbidden[2] && method.Name == "Multiply");
    }

    [Fact]
    public void The_folded_CE_holds_no_statistic_of_the_Newton_iteration()
    {
        var chain = FoldingEquivalenceTests.Trained("conv-BN-CE", float64);
        using var oneStep = new ChannelEquilibrium(32, iterations: 1, dtype: float64);
        using var nineSteps = new ChannelEquilibrium(32, iterations: 9, dtype: float64);
        using (no_grad())
        {
            foreach (var target in new[] { oneStep, nineSteps })
                foreach (var (key, value) in chain.Block!.state_dict())
                    target.state_dict()[key].copy_(value);
        }
        oneStep.eval();
        nineSteps.eval();

        using var foldedOne = InferenceFolding.ChannelEquilibrium(oneStep);
        using var foldedNine = InferenceFolding.ChannelEquilibrium(nineSteps);

        var one = foldedOne.state_dict();
        Assert.DoesNotContain(one.Keys, key => key.Contains("running") || key.Contains("x_weight"));
        Assert.All(one, entry => Assert.True(entry.Value.equal(foldedNine.state_dict()[entry.Key]).all().item<bool>(), entry.Key));
        var input = randn(new long[] { 3, 32, 6, 6 }, dtype: float64, generator: new Generator(14));
        Assert.True(FoldingEquivalenceTests.Evaluate(foldedOne, input).equal(FoldingEquivalenceTests.Evaluate(foldedNine, input)).all().item<bool>());
    }

    private static bool IsForbidden(MethodBase method) =>
        Forbidden.Contains(method.DeclaringType)
        || (method.DeclaringType?.Assembly == typeof(Tensor).Assembly && ForbiddenTorchMethods.Contains(method.Name))
        || method.DeclaringType?.FullName?.Contains("linalg", StringComparison.Ordinal) == true;

    /// <summary>
    /// Every method called (call, callvirt, newobj, ldftn) from <paramref name="root"/>, following calls
    /// into CeDsl.Runtime transitively; calls into other assemblies are listed but not followed.
    /// </summary>
    private static IEnumerable<MethodBase> Reachable(MethodBase root)
    {
        var runtime = typeof(InferenceFolding).Assembly;
        var seen = new HashSet<MethodBase>();
        var pending = new Stack<MethodBase>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var method = pending.Pop();
            foreach (var callee in Callees(method))
            {
                if (!seen.Add(callee))
                    continue;
                yield return callee;
                if (callee.DeclaringType?.Assembly == runtime)
                    pending.Push(callee);
            }
        }
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(field => (OpCode)field.GetValue(null)!)
        .ToDictionary(code => code.Value);

    private static IEnumerable<MethodBase> Callees(MethodBase method)
    {
        byte[]? il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
            yield break;
        var typeArguments = method.DeclaringType is { IsGenericType: true } type ? type.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int position = 0;
        while (position < il.Length)
        {
            short value = il[position] == 0xFE ? (short)(0xFE00 | il[position + 1]) : il[position];
            position += il[position] == 0xFE ? 2 : 1;
            var code = OpCodesByValue[value];
            if (code.OperandType == OperandType.InlineMethod)
                yield return method.Module.ResolveMethod(BitConverter.ToInt32(il, position), typeArguments, methodArguments)!;
            position += code.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, position),
                _ => 4,
            };
        }
    }
}
