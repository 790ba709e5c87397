using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static CeDsl.Kernels.BlockKernels;
using static TorchSharp.torch;

namespace CeDsl.Kernels;

/// <summary>
/// The trainable Channel Equilibrium on CPU tensors (float32, float64): the forward pass in training or
/// evaluation mode and its backward pass, each as two passes over the activation in parallel over
/// (sample, group) blocks, with the per-group and per-sample math between them in C#. The same numbers
/// as the module's libtorch operators (the semantics of <see cref="Layers.ChannelEquilibrium"/>), in a
/// few operators instead of about a hundred, without activation-sized temporaries.
/// </summary>
/// <remarks>
/// <para>Forward, training: (1) per block, the instance means and the instance-centred Gram matrix
/// (d x d), whose diagonal gives the instance variances; (2) the gate per sample, s, the group
/// covariances Sigma = eps I + (sum of the Grams + P * scatter of the instance means) / M, trace
/// normalization, the Newton iterations, the running statistics; (3) per block, the output
/// Y = M_ng X with M_ng = lambda wm_g + diag((1 - lambda) y_ng / s). Evaluation: (1) means and
/// variances only, (2) the gate with running_scale and running_wm, (3) the same map.</para>
/// <para>Backward: (1) per block, dM_ng = dY X^T; (2) the gradients of lambda, the gate (and its
/// weights), s, the Newton iterations and the covariance, giving per group A = dS + dS^T and per
/// (sample, channel) D = 2 dv / (P - 1); (3) per block, dX = M_ng^T dY + (A + D)(X - mu_ng) + A (mu_ng - m_g),
/// one map of the 2d rows (dY; X - mu). Gradients through the means vanish: the columns centred by
/// a mean sum to zero.</para>
/// <para>What the backward pass needs of the forward pass lives in one byte tensor (<see cref="Layout"/>),
/// released with the autograd graph.</para>
/// </remarks>
internal static unsafe class ChannelEquilibriumKernels
{
    /// <summary>The module's tensors and settings one call reads.</summary>
    internal sealed record Module(
        string Name, int Groups, int GroupSize, int Iterations, double Eps, double Momentum, double ScaleMomentum,
        Tensor XWeight, Tensor Reduce, Tensor NormWeight, Tensor NormBias, double NormEps, Tensor Expand,
        Tensor RunningMean, Tensor RunningWm, Tensor RunningScale);

    /// <summary>
    /// What one forward call hands to its backward call besides the tensors: the sizes, the mode,
    /// lambda and s.
    /// </summary>
    internal sealed class Call(Module module, bool training, long samples, long positions)
    {
        public Module Module { get; } = module;
        public bool Training { get; } = training;
        public long Samples { get; } = samples;
        public long Positions { get; } = positions;
        public double Lambda { get; set; }
        public double Scale { get; set; }
        public Layout Layout { get; } = new(samples, module.Groups, module.GroupSize, module.Reduce.shape[0], module.Iterations, (int)module.XWeight.element_size());
    }

    /// <summary>
    /// The workspace: per (sample, channel) the instance mean, variance and gate output, per sample the
    /// gate's hidden values and inverse standard deviation (all in the element type), then per group
    /// (double) the group mean, the trace-normalized covariance, its trace, the Newton iterates P, P^2, P^3
    /// of the iterations after the first, and wm.
    /// </summary>
    internal readonly struct Layout
    {
        public readonly long Mean, Variance, Gate, Normalized, Affine, InverseStd;
        public readonly long GroupMean, Covariance, Trace, Newton, Wm, Bytes;

        public Layout(long samples, int groups, int d, long hidden, int iterations, int elementSize)
        {
            long channels = (long)groups * d;
            Mean = 0;
            Variance = Mean + samples * channels * elementSize;
            Gate = Variance + samples * channels * elementSize;
            Normalized = Gate + samples * channels * elementSize;
            Affine = Normalized + samples * hidden * elementSize;
            InverseStd = Affine + samples * hidden * elementSize;
            GroupMean = (InverseStd + samples * elementSize + 7) / 8 * 8;
            Covariance = GroupMean + channels * sizeof(double);
            Trace = Covariance + groups * d * d * sizeof(double);
            Newton = Trace + groups * sizeof(double);
            Wm = Newton + 3L * (iterations - 1) * groups * d * d * sizeof(double);
            Bytes = Wm + (long)groups * d * d * sizeof(double);
        }
    }

    /// <summary>
    /// The forward pass into <paramref name="output"/> (allocated like <paramref name="input"/>), keeping
    /// what the backward pass needs in <paramref name="workspace"/> (<see cref="Layout.Bytes"/> bytes).
    /// Training updates the running statistics, after every check has passed. Throws
    /// <see cref="ArgumentException"/> for non-finite input or (training) s = 0,
    /// <see cref="InvalidOperationException"/> for evaluation before any training step.
    /// </summary>
    internal static void Forward(Call call, Tensor input, Tensor output, Tensor workspace)
    {
        if (input.dtype == ScalarType.Float32)
            Forward<float>(call, (float*)Address(input), (float*)Address(output), (byte*)Address(workspace));
        else
            Forward<double>(call, (double*)Address(input), (double*)Address(output), (byte*)Address(workspace));
    }

    /// <summary>
    /// Evaluation without gradients when the batch has samples enough for one loop item per sample
    /// (<see cref="CpuKernels.FusesSamples"/>): each sample's variances, gate and maps while it is in cache,
    /// as the folded CE does. Returns false (nothing done) for smaller batches; <see cref="Forward(Call, Tensor, Tensor, Tensor)"/> then.
    /// </summary>
    internal static bool EvaluateBySample(Call call, Tensor input, Tensor output)
    {
        if (!CpuKernels.FusesSamples(call.Samples))
            return false;
        var module = call.Module;
        double lambda = Lambda(module.XWeight);
        double scale = (1 - lambda) / Layers.AdaptiveInstanceInverse.CheckedRunningScale(module.RunningScale, module.Name);
        var gate = new CpuKernels.Gate(module.Reduce, module.NormWeight, module.NormBias, module.NormEps, module.Expand, scale);
        bool finite = input.dtype == ScalarType.Float32
            ? EvaluateBySample<float>(call, input, output, gate, lambda)
            : EvaluateBySample<double>(call, input, output, gate, lambda);
        if (!finite)
            throw Layers.LayerChecks.NotFinite(module.Name, StatisticName);
        return true;
    }

    private static bool EvaluateBySample<T>(Call call, Tensor input, Tensor output, CpuKernels.Gate gate, double lambda)
        where T : unmanaged, INumber<T>
    {
        int count = call.Module.Groups * call.Module.GroupSize * call.Module.GroupSize;
        var weight = ArrayPool<T>.Shared.Rent(count);
        try
        {
            fixed (T* map = weight)
            {
                T* running = (T*)Address(call.Module.RunningWm);
                for (int i = 0; i < count; i++)
                    map[i] = T.CreateTruncating(lambda * double.CreateTruncating(running[i]));
                return CpuKernels.ChannelEquilibrium(input, output, (nint)map, gate, call.Module.Groups, call.Module.GroupSize);
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(weight);
        }
    }

    /// <summary>lambda = sigmoid(x_weight).</summary>
    private static double Lambda(Tensor xWeight) => 1 / (1 + Math.Exp(-xWeight.ToDouble()));

    /// <summary>
    /// The backward pass: d loss / d input into <paramref name="inputGradient"/> (null: not needed), and
    /// the gradients of lambda's parameter and of the gate's weights (each allocated like its tensor).
    /// </summary>
    internal static void Backward(Call call, Tensor input, Tensor outputGradient, Tensor workspace, Tensor? inputGradient,
        Tensor xWeightGradient, Tensor reduceGradient, Tensor normWeightGradient, Tensor normBiasGradient, Tensor expandGradient)
    {
        if (input.dtype == ScalarType.Float32)
            Backward<float>(call, (float*)Address(input), (float*)Address(outputGradient), (byte*)Address(workspace),
                inputGradient is null ? null : (float*)Address(inputGradient), (float*)Address(xWeightGradient), (float*)Address(reduceGradient),
                (float*)Address(normWeightGradient), (float*)Address(normBiasGradient), (float*)Address(expandGradient));
        else
            Backward<double>(call, (double*)Address(input), (double*)Address(outputGradient), (byte*)Address(workspace),
                inputGradient is null ? null : (double*)Address(inputGradient), (double*)Address(xWeightGradient), (double*)Address(reduceGradient),
                (double*)Address(normWeightGradient), (double*)Address(normBiasGradient), (double*)Address(expandGradient));
    }

    private static void Forward<T>(Call call, T* x, T* y, byte* workspace)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        var module = call.Module;
        var layout = call.Layout;
        long n = call.Samples, positions = call.Positions, hidden = module.Reduce.shape[0];
        int groups = module.Groups, d = module.GroupSize;
        long channels = (long)groups * d, pairs = n * groups;
        T* mean = (T*)(workspace + layout.Mean), variance = (T*)(workspace + layout.Variance), gate = (T*)(workspace + layout.Gate);
        double* wm = (double*)(workspace + layout.Wm);

        // Pass 1: instance statistics (and in training the instance-centred Grams, summed per group below).
        double[]? grams = call.Training ? ArrayPool<double>.Shared.Rent(checked((int)(pairs * d * d))) : null;
        try
        {
            fixed (double* gram = grams)
            {
                InstanceStatistics(x, mean, variance, gram, n, groups, d, positions);
                for (long i = 0; i < n * channels; i++)
                    if (!T.IsFinite(variance[i]))
                        throw Layers.LayerChecks.NotFinite(module.Name, StatisticName);

                // The gate of every sample, keeping its hidden values for the backward pass.
                var weights = new CpuKernels.Gate(module.Reduce, module.NormWeight, module.NormBias, module.NormEps, module.Expand, 1).Weights<T>();
                var saved = new GateKernels.Saved<T>((T*)(workspace + layout.Normalized), (T*)(workspace + layout.Affine), (T*)(workspace + layout.InverseStd));
                var gateScratch = ArrayPool<T>.Shared.Rent(checked((int)((channels + hidden) * n)));
                try
                {
                    fixed (T* scratch = gateScratch)
                        GateKernels.Forward(weights, n, variance, gate, scratch, saved);
                }
                finally
                {
                    ArrayPool<T>.Shared.Return(gateScratch);
                }

                double scale;
                if (call.Training)
                {
                    double sum = 0;
                    for (long i = 0; i < n * channels; i++)
                        sum += double.CreateTruncating(variance[i]);
                    scale = Math.Sqrt(sum / (n * channels));
                    if (!(scale > 0))
                        throw Layers.AdaptiveInstanceInverse.ZeroScale(module.Name);
                    Decorrelation(call, mean, gram, workspace);
                    for (long i = 0; i < (long)groups * d * d; i++)
                        if (!double.IsFinite(wm[i]))
                            throw Layers.LayerChecks.NotFinite(module.Name, StatisticName);
                    UpdateRunningStatistics<T>(call, workspace, scale);
                }
                else
                {
                    scale = Layers.AdaptiveInstanceInverse.CheckedRunningScale(module.RunningScale, module.Name);
                    T* running = (T*)Address(module.RunningWm);
                    for (long i = 0; i < (long)groups * d * d; i++)
                        wm[i] = double.CreateTruncating(running[i]);
                }
                call.Scale = scale;
            }
        }
        finally
        {
            if (grams is not null)
                ArrayPool<double>.Shared.Return(grams);
        }

        // Pass 2: Y = (lambda wm_g + diag((1 - lambda) y_ng / s)) X, block by block.
        double lambda = call.Lambda = Lambda(module.XWeight);
        var weight = ArrayPool<T>.Shared.Rent(groups * d * d);
        var factor = ArrayPool<T>.Shared.Rent(checked((int)(n * channels)));
        try
        {
            fixed (T* map = weight, diagonal = factor)
            {
                for (long i = 0; i < (long)groups * d * d; i++)
                    map[i] = T.CreateTruncating(lambda * wm[i]);
                for (long i = 0; i < n * channels; i++)
                    diagonal[i] = T.CreateTruncating((1 - lambda) * double.CreateTruncating(gate[i]) / call.Scale);
                CpuKernels.BlockDiagonalMap(x, y, map, diagonal, n, groups, d, positions);
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(weight);
            ArrayPool<T>.Shared.Return(factor);
        }
    }

    /// <summary>How errors name the statistic the finiteness check reads (the same as the operators' path).</summary>
    internal const string StatisticName = "the per-instance channel covariance over H*W";

    /// <summary>
    /// Per (sample, channel) the instance mean and unbiased variance; with <paramref name="gram"/>, per
    /// (sample, group) the Gram matrix of the instance-centred rows (d x d, double), whose diagonal gives the variance.
    /// </summary>
    private static void InstanceStatistics<T>(T* x, T* mean, T* variance, double* gram, long samples, int groups, int d, long positions)
        where T : unmanaged, INumber<T>
    {
        nint input = (nint)x, means = (nint)mean, variances = (nint)variance, grams = (nint)gram;
        long pairs = samples * groups, perItem = CpuKernels.BlocksPerItem(pairs, d * positions);
        bool fetchBlock = PrefetchesBlocks<T>(d, positions, pairs);
        ParallelLoop.For((pairs + perItem - 1) / perItem, workPerItem: perItem * d * positions * (d + 1) / 2, body: item =>
        {
            for (long pair = item * perItem; pair < Math.Min(pairs, (item + 1) * perItem); pair++)
            {
                T* rows = (T*)input + pair * d * positions, mu = (T*)means + pair * d, v = (T*)variances + pair * d;
                if (grams == 0)
                {
                    for (int i = 0; i < d; i++)
                        v[i] = RowVariance(rows + i * positions, positions, out mu[i]);
                    continue;
                }
                if (fetchBlock)
                    Prefetch(rows, d * positions, now: true);
                for (int i = 0; i < d; i++)
                    mu[i] = RowMean(rows + i * positions, positions);
                double* g = (double*)grams + GroupMajor(pair % groups, pair / groups, samples) * d * d;
                new Span<double>(g, d * d).Clear();
                Products(rows, mu, d, rows, mu, d, positions, symmetric: true, g);
                for (int i = 0; i < d; i++)
                    v[i] = T.CreateTruncating(g[i * d + i] / (positions - 1));
            }
        });
    }

    /// <summary>
    /// Per group: the group mean m, the covariance Sigma = eps I + (sum of the Grams + P * sum over n of
    /// (mu_n - m)(mu_n - m)^T) / M, its trace t, Sigma / t, and T Newton iterations from P0 = I, keeping the iterates.
    /// </summary>
    private static void Decorrelation<T>(Call call, T* mean, double* gram, byte* workspace) where T : unmanaged, INumber<T>
    {
        var module = call.Module;
        var layout = call.Layout;
        int groups = module.Groups, d = module.GroupSize, iterations = module.Iterations;
        long n = call.Samples, positions = call.Positions, channels = (long)groups * d;
        double columns = n * positions, eps = module.Eps;
        nint means = (nint)mean, grams = (nint)gram, space = (nint)workspace;
        ParallelLoop.For(groups, workPerItem: n * d * d + 6L * d * d * d, body: item =>
        {
            int g = (int)item;
            byte* w = (byte*)space;
            double* m = (double*)(w + layout.GroupMean) + g * d;
            double* sigma = (double*)(w + layout.Covariance) + (long)g * d * d;
            double* newton = (double*)(w + layout.Newton);
            double* wm = (double*)(w + layout.Wm) + (long)g * d * d;
            double* deviation = stackalloc double[d];
            new Span<double>(m, d).Clear();
            new Span<double>(sigma, d * d).Clear();
            for (long sample = 0; sample < n; sample++)
                for (int i = 0; i < d; i++)
                    m[i] += double.CreateTruncating(((T*)means)[sample * channels + g * d + i]);
            for (int i = 0; i < d; i++)
                m[i] /= n;
            for (long sample = 0; sample < n; sample++)
            {
                AddScaled(sigma, (double*)grams + GroupMajor(g, sample, n) * d * d, 1.0, d * d);
                for (int i = 0; i < d; i++)
                    deviation[i] = double.CreateTruncating(((T*)means)[sample * channels + g * d + i]) - m[i];
                for (int i = 0; i < d; i++)
                    AddScaled(sigma + i * d, deviation, positions * deviation[i], d);
            }
            double trace = 0;
            for (int i = 0; i < d * d; i++)
                sigma[i] /= columns;
            for (int i = 0; i < d; i++)
            {
                sigma[i * d + i] += eps;
                trace += sigma[i * d + i];
            }
            ((double*)(w + layout.Trace))[g] = trace;
            for (int i = 0; i < d * d; i++)
                sigma[i] *= 1 / trace;

            // P1 = 1.5 I - 0.5 Sigma_N (P0 = I: its cube is I), then P(k+1) = 1.5 P(k) - 0.5 P(k)^3 Sigma_N.
            double* p = iterations == 1 ? wm : Iterate(newton, layout, groups, d, 1, 0) + (long)g * d * d;
            for (int i = 0; i < d * d; i++)
                p[i] = -0.5 * sigma[i];
            for (int i = 0; i < d; i++)
                p[i * d + i] += 1.5;
            for (int k = 1; k < iterations; k++)
            {
                double* square = Iterate(newton, layout, groups, d, k, 1) + (long)g * d * d;
                double* cube = Iterate(newton, layout, groups, d, k, 2) + (long)g * d * d;
                double* next = k + 1 == iterations ? wm : Iterate(newton, layout, groups, d, k + 1, 0) + (long)g * d * d;
                SmallMatrix.Multiply(p, false, p, false, square, d, 1, 0);
                SmallMatrix.Multiply(square, false, p, false, cube, d, 1, 0);
                SmallMatrix.Multiply(cube, false, sigma, false, next, d, -0.5, 0);
                for (int i = 0; i < d * d; i++)
                    next[i] += 1.5 * p[i];
                p = next;
            }
        });
    }

    /// <summary>The iterate P(k) (which 0), P(k)^2 (1) or P(k)^3 (2) of every group, for k = 1 .. T - 1.</summary>
    private static double* Iterate(double* newton, Layout layout, int groups, int d, int k, int which) =>
        newton + ((long)(k - 1) * 3 + which) * groups * d * d;

    /// <summary>running = (1 - m) running + m value for running_mean, running_wm (momentum m) and running_scale.</summary>
    private static void UpdateRunningStatistics<T>(Call call, byte* workspace, double scale) where T : unmanaged, INumber<T>
    {
        var module = call.Module;
        long channels = (long)module.Groups * module.GroupSize;
        Update((T*)Address(module.RunningMean), (double*)(workspace + call.Layout.GroupMean), channels, module.Momentum);
        Update((T*)Address(module.RunningWm), (double*)(workspace + call.Layout.Wm), channels * module.GroupSize, module.Momentum);
        Update((T*)Address(module.RunningScale), &scale, 1, module.ScaleMomentum);

        static void Update(T* running, double* value, long count, double momentum)
        {
            // The operators' rounding: running * (1 - m) and value * m in the element type, then their sum.
            T keep = T.CreateTruncating(1.0 - momentum), take = T.CreateTruncating(momentum);
            for (long i = 0; i < count; i++)
                running[i] = running[i] * keep + T.CreateTruncating(value[i]) * take;
        }
    }

    private static void Backward<T>(Call call, T* x, T* dy, byte* workspace, T* dx,
        T* xWeightGradient, T* reduceGradient, T* normWeightGradient, T* normBiasGradient, T* expandGradient)
        where T : unmanaged, INumber<T>, IExponentialFunctions<T>, IRootFunctions<T>
    {
        var module = call.Module;
        var layout = call.Layout;
        long n = call.Samples, positions = call.Positions, hidden = module.Reduce.shape[0];
        int groups = module.Groups, d = module.GroupSize;
        long channels = (long)groups * d, pairs = n * groups;
        double lambda = call.Lambda, scale = call.Scale;
        T* mean = (T*)(workspace + layout.Mean), variance = (T*)(workspace + layout.Variance), gate = (T*)(workspace + layout.Gate);
        double* wm = (double*)(workspace + layout.Wm);

        var mapGradients = ArrayPool<double>.Shared.Rent(checked((int)(pairs * d * d)));
        var perGroup = ArrayPool<double>.Shared.Rent(2 * groups * d * d);
        var perChannel = ArrayPool<T>.Shared.Rent(checked((int)(2 * n * channels + 2 * n * hidden)));
        try
        {
            fixed (double* dm = mapGradients, groupArrays = perGroup)
            fixed (T* channelArrays = perChannel)
            {
                // Pass 1: dM_ng = dY_ng X_ng^T.
                MapGradients(dy, x, dm, n, groups, d, positions);

                // lambda: dM = sum over blocks of <dM_ng, wm_g - diag(f_ng)>, f = y / s.
                double* summed = groupArrays, a = groupArrays + groups * d * d;
                T* gateGradient = channelArrays, varianceGradient = channelArrays + n * channels;
                var (lambdaGradient, scaleGradient) = DiagonalGradients(call, dm, summed, gate, gateGradient);
                for (long i = 0; i < (long)groups * d * d; i++)
                    lambdaGradient += summed[i] * wm[i];
                *xWeightGradient = T.CreateTruncating(lambdaGradient * lambda * (1 - lambda));

                // The gate, then s = sqrt(mean of v) in training (running_scale, a constant, in evaluation).
                var weights = new CpuKernels.Gate(module.Reduce, module.NormWeight, module.NormBias, module.NormEps, module.Expand, 1).Weights<T>();
                GateKernels.Backward(weights, n, variance, gate, gateGradient,
                    (T*)(workspace + layout.Normalized), (T*)(workspace + layout.Affine), (T*)(workspace + layout.InverseStd), varianceGradient,
                    reduceGradient, normWeightGradient, normBiasGradient, expandGradient, channelArrays + 2 * n * channels);
                if (dx is null)
                    return;
                double perVariance = call.Training ? scaleGradient / (2 * scale * n * channels) : 0;

                // wm in training: back through the Newton iterations and the covariance, A = dS + dS^T.
                if (call.Training)
                {
                    for (long i = 0; i < (long)groups * d * d; i++)
                        summed[i] *= lambda;
                    CovarianceGradient(call, summed, a, workspace);
                }

                // Pass 2: dX = M^T dY + (A + D)(X - mu) + A (mu - m), D = diag(2 dv / (P - 1)).
                InputGradient(call, x, dy, dx, mean, gate, wm, call.Training ? a : null, varianceGradient, perVariance, workspace);
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(mapGradients);
            ArrayPool<double>.Shared.Return(perGroup);
            ArrayPool<T>.Shared.Return(perChannel);
        }
    }

    /// <summary>
    /// Where the d x d statistics of the block of <paramref name="group"/> and <paramref name="sample"/> live in the
    /// per-block arrays, in blocks: group by group, so that each group's blocks, which the sums over samples read, are contiguous.
    /// </summary>
    private static long GroupMajor(long group, long sample, long samples) => group * samples + sample;

    /// <summary>
    /// From the blocks' dM (<see cref="GroupMajor"/>), in parallel over groups: per group the sum of its blocks over the
    /// samples (<paramref name="summed"/>, in the samples' order), the gate's gradient (1 - lambda) dM_ii / s per (sample,
    /// channel), and the parts of d loss / d lambda and d loss / d s that the diagonals give, f = y / s (each group's in
    /// its samples' order, then the groups' in theirs).
    /// </summary>
    private static (double Lambda, double Scale) DiagonalGradients<T>(Call call, double* dm, double* summed, T* gate, T* gateGradient)
        where T : unmanaged, INumber<T>
    {
        int groups = call.Module.Groups, d = call.Module.GroupSize;
        long samples = call.Samples;
        double lambda = call.Lambda, scale = call.Scale;
        var parts = new double[2 * groups];
        nint blocks = (nint)dm, sums = (nint)summed, gates = (nint)gate, gateGradients = (nint)gateGradient;
        ParallelLoop.For(groups, workPerItem: samples * d * d, body: g =>
        {
            double* sum = (double*)sums + g * d * d;
            new Span<double>(sum, d * d).Clear();
            double lambdaPart = 0, scalePart = 0;
            for (long sample = 0; sample < samples; sample++)
            {
                double* block = (double*)blocks + GroupMajor(g, sample, samples) * d * d;
                AddScaled(sum, block, 1.0, d * d);
                for (int i = 0; i < d; i++)
                {
                    long c = (sample * groups + g) * d + i;
                    double y = double.CreateTruncating(((T*)gates)[c]), diagonal = block[i * d + i];
                    lambdaPart -= diagonal * y / scale;
                    // f = y / s: d y = (1 - lambda) dM_ii / s, d s -= (1 - lambda) dM_ii y / s^2.
                    ((T*)gateGradients)[c] = T.CreateTruncating((1 - lambda) * diagonal / scale);
                    scalePart -= (1 - lambda) * diagonal * y / (scale * scale);
                }
            }
            parts[2 * g] = lambdaPart;
            parts[2 * g + 1] = scalePart;
        });
        double lambdaGradient = 0, scaleGradient = 0;
        for (int g = 0; g < groups; g++)
        {
            lambdaGradient += parts[2 * g];
            scaleGradient += parts[2 * g + 1];
        }
        return (lambdaGradient, scaleGradient);
    }

    /// <summary>dM_ng = dY_ng X_ng^T for every (sample, group) block, d x d doubles each (<see cref="GroupMajor"/>).</summary>
    private static void MapGradients<T>(T* dy, T* x, double* dm, long samples, int groups, int d, long positions) where T : unmanaged, INumber<T>
    {
        nint gradient = (nint)dy, input = (nint)x, result = (nint)dm;
        long pairs = samples * groups, perItem = CpuKernels.BlocksPerItem(pairs, 2 * d * positions);
        bool fetchBlock = PrefetchesBlocks<T>(d, positions, pairs);
        ParallelLoop.For((pairs + perItem - 1) / perItem, workPerItem: perItem * d * d * positions, body: item =>
        {
            for (long pair = item * perItem; pair < Math.Min(pairs, (item + 1) * perItem); pair++)
            {
                double* block = (double*)result + GroupMajor(pair % groups, pair / groups, samples) * d * d;
                new Span<double>(block, d * d).Clear();
                long offset = pair * d * positions;
                if (fetchBlock)
                {
                    Prefetch((T*)gradient + offset, d * positions, now: true);
                    Prefetch((T*)input + offset, d * positions, now: true);
                }
                Products((T*)gradient + offset, null, d, (T*)input + offset, null, d, positions, symmetric: false, block);
            }
        });
    }

    /// <summary>
    /// From d loss / d wm (per group, overwritten), back through the Newton iterations, the trace
    /// normalization and Sigma = eps I + S / M to <paramref name="a"/> = dS + dS^T per group.
    /// </summary>
    private static void CovarianceGradient(Call call, double* wmGradient, double* a, byte* workspace)
    {
        var module = call.Module;
        var layout = call.Layout;
        int groups = module.Groups, d = module.GroupSize, iterations = module.Iterations;
        double columns = (double)call.Samples * call.Positions;
        nint gradients = (nint)wmGradient, result = (nint)a, space = (nint)workspace;
        ParallelLoop.For(groups, workPerItem: 14L * d * d * d, body: item =>
        {
            int g = (int)item;
            byte* w = (byte*)space;
            double* sigma = (double*)(w + layout.Covariance) + (long)g * d * d;
            double* newton = (double*)(w + layout.Newton);
            double* gradient = (double*)gradients + (long)g * d * d;
            double* sigmaGradient = stackalloc double[d * d], cubeGradient = stackalloc double[d * d];
            double* squareGradient = stackalloc double[d * d], previous = stackalloc double[d * d];
            new Span<double>(sigmaGradient, d * d).Clear();
            // P(k+1) = 1.5 P - 0.5 P^3 Sigma_N, from the last iteration back to P1.
            for (int k = iterations - 1; k >= 1; k--)
            {
                double* p = Iterate(newton, layout, groups, d, k, 0) + (long)g * d * d;
                double* square = Iterate(newton, layout, groups, d, k, 1) + (long)g * d * d;
                double* cube = Iterate(newton, layout, groups, d, k, 2) + (long)g * d * d;
                SmallMatrix.Multiply(gradient, false, sigma, true, cubeGradient, d, -0.5, 0);
                SmallMatrix.Multiply(cube, true, gradient, false, sigmaGradient, d, -0.5, 1);
                // P^3 = (P P) P: the square's gradient, then P's from all three factors.
                SmallMatrix.Multiply(cubeGradient, false, p, true, squareGradient, d, 1, 0);
                for (int i = 0; i < d * d; i++)
                    previous[i] = 1.5 * gradient[i];
                SmallMatrix.Multiply(square, true, cubeGradient, false, previous, d, 1, 1);
                SmallMatrix.Multiply(squareGradient, false, p, true, previous, d, 1, 1);
                SmallMatrix.Multiply(p, true, squareGradient, false, previous, d, 1, 1);
                new Span<double>(previous, d * d).CopyTo(new Span<double>(gradient, d * d));
            }
            // P1 = 1.5 I - 0.5 I^3 Sigma_N.
            for (int i = 0; i < d * d; i++)
                sigmaGradient[i] -= 0.5 * gradient[i];

            // Sigma_N = Sigma / t, t = trace(Sigma) = the stored trace: dSigma = dSigma_N / t - <dSigma_N, Sigma_N> / t I.
            double trace = ((double*)(w + layout.Trace))[g], projection = 0;
            for (int i = 0; i < d * d; i++)
                projection += sigmaGradient[i] * sigma[i];
            double* target = (double*)result + (long)g * d * d;
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++)
                {
                    double upper = sigmaGradient[i * d + j] / trace, lower = sigmaGradient[j * d + i] / trace;
                    if (i == j)
                    {
                        upper -= projection / trace;
                        lower -= projection / trace;
                    }
                    // Sigma = eps I + S / M.
                    target[i * d + j] = (upper + lower) / columns;
                }
        });
    }

    /// <summary>Pass 2 of the backward pass: the input's gradient, block by block.</summary>
    private static void InputGradient<T>(Call call, T* x, T* dy, T* dx, T* mean, T* gate, double* wm, double* a,
        T* varianceGradient, double perVariance, byte* workspace)
        where T : unmanaged, INumber<T>
    {
        var module = call.Module;
        int groups = module.Groups, d = module.GroupSize;
        long n = call.Samples, positions = call.Positions, pairs = n * groups;
        double lambda = call.Lambda, scale = call.Scale;
        double* groupMean = (double*)(workspace + call.Layout.GroupMean);
        // Per group, [lambda wm^T | A] (d x 2d); per block only the diagonals and the bias A (mu - m) change.
        var groupArrays = ArrayPool<T>.Shared.Rent(groups * 2 * d * d);
        try
        {
            fixed (T* groupMaps = groupArrays)
            {
                for (int g = 0; g < groups; g++)
                {
                    double* w = wm + (long)g * d * d, s = a is null ? null : a + (long)g * d * d;
                    T* target = groupMaps + (long)g * 2 * d * d;
                    for (int i = 0; i < d; i++)
                        for (int j = 0; j < d; j++)
                        {
                            target[i * 2 * d + j] = T.CreateTruncating(lambda * w[j * d + i]);
                            target[i * 2 * d + d + j] = s is null ? T.Zero : T.CreateTruncating(s[i * d + j]);
                        }
                }
                nint input = (nint)x, gradient = (nint)dy, output = (nint)dx, means = (nint)mean, gates = (nint)gate;
                nint covariance = (nint)a, variances = (nint)varianceGradient, mapsOfGroups = (nint)groupMaps, groupMeans = (nint)groupMean;
                long perItem = CpuKernels.BlocksPerItem(pairs, 3 * d * positions);
                long ahead = PrefetchDistance<T>(d, positions, pairs);
                double gateFactor = (1 - lambda) / scale, varianceFactor = 2.0 / (positions - 1);
                ParallelLoop.For((pairs + perItem - 1) / perItem, workPerItem: perItem * 2 * d * d * positions, body: item =>
                {
                    T* map = stackalloc T[2 * d * d];
                    T* bias = stackalloc T[d];
                    double* product = stackalloc double[d];
                    for (long pair = item * perItem; pair < Math.Min(pairs, (item + 1) * perItem); pair++)
                    {
                        int g = (int)(pair % groups);
                        new ReadOnlySpan<T>((T*)mapsOfGroups + (long)g * 2 * d * d, 2 * d * d).CopyTo(new Span<T>(map, 2 * d * d));
                        T* mu = (T*)means + pair * d;
                        double* s = covariance == 0 ? null : (double*)covariance + (long)g * d * d;
                        // A (mu - m), A symmetric: the sum over j of (mu_j - m_j) times A's row j.
                        new Span<double>(product, d).Clear();
                        for (int j = 0; s is not null && j < d; j++)
                            AddScaled(product, s + j * d, double.CreateTruncating(mu[j]) - ((double*)groupMeans)[g * d + j], d);
                        for (int i = 0; i < d; i++)
                        {
                            long c = pair * d + i;
                            // M^T[i, i] += (1 - lambda) f_i; D_i = 2 dv_i / (P - 1).
                            map[i * 2 * d + i] += T.CreateTruncating(gateFactor * double.CreateTruncating(((T*)gates)[c]));
                            double dv = double.CreateTruncating(((T*)variances)[c]) + perVariance;
                            map[i * 2 * d + d + i] += T.CreateTruncating(varianceFactor * dv);
                            bias[i] = T.CreateTruncating(product[i]);
                        }
                        long offset = pair * d * positions;
                        Map((T*)gradient + offset, d, (T*)input + offset, mu, d, (T*)output + offset, d, map, bias, positions, ahead);
                    }
                });
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(groupArrays);
        }
    }

    /// <summary>Products of d x d row-major double matrices (the Newton iterations and their gradients).</summary>
    private static class SmallMatrix
    {
        /// <summary>c = alpha op(a) op(b) + beta c, op = transposed or not.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        internal static void Multiply(double* a, bool transposeA, double* b, bool transposeB, double* c, int d, double alpha, double beta)
        {
            double* right = b;
            double* transposed = stackalloc double[transposeB ? d * d : 0];
            if (transposeB)
            {
                Transpose(b, transposed, d, d);
                right = transposed;
            }
            BlockKernels.Multiply(a, transposeA, right, c, d, d, d, alpha, beta);
        }
    }
}
