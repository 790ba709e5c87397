using CeDsl.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Layers;

public class NewtonIterationTests
{
    /// <summary>For Sigma_N = I/d every P(k) is p(k)*I with p <- 1.5p - 0.5p^3/d, p(0) = 1.</summary>
    private static double ScalarNewton(int groupSize, int iterations)
    {
        double p = 1;
        for (int k = 0; k < iterations; k++)
            p = 1.5 * p - 0.5 * p * p * p / groupSize;
        return p;
    }

    [Theory]
    [InlineData(16, 2.87)]
    [InlineData(64, 3.23)]
    public void Three_iterations_on_the_identity_stop_far_from_convergence(int groupSize, double documented)
    {
        double p = ScalarNewton(groupSize, 3);
        Assert.Equal(documented, p, 2);
        Assert.True(p < Math.Sqrt(groupSize) - 0.5, "T = 3 must not have converged to sqrt(d)");

        var normalized = eye(groupSize, dtype: float64).expand(2, groupSize, groupSize) / groupSize;
        var wm = Whitening.NewtonIterations(normalized, 3);
        Assert.True(wm.allclose(p * eye(groupSize, dtype: float64).expand(2, groupSize, groupSize), rtol: 0, atol: 1e-12));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(64)]
    public void A_module_on_data_with_identity_covariance_multiplies_by_the_unconverged_scalar(int groupSize)
    {
        // One group; columns built so that the centred covariance over M = N*H*W is exactly I.
        const long n = 8, h = 8, w = 8;
        long m = n * h * w;
        var generator = new Generator(11);
        var z = randn(new long[] { groupSize, m }, dtype: float64, generator: generator);
        z -= z.mean(new long[] { 1 }, keepdim: true);
        var (eigenvalues, eigenvectors) = linalg.eigh(z.matmul(z.T) / m);
        var whitened = eigenvectors.matmul(diag(eigenvalues.rsqrt())).matmul(eigenvectors.T).matmul(z);
        var columns = whitened + 3.0;                      // a mean does not change the covariance
        var x = columns.view(groupSize, n, h, w).transpose(0, 1).contiguous();

        using var bd = new BatchDecorrelation(groupSize, groupSize, dtype: float64);
        var output = bd.call(x);

        // Sigma = eps*I + I, Sigma_N = I/d: wm = p(3)*I, applied to the uncentred input.
        Assert.True(output.allclose(ScalarNewton(groupSize, 3) * x, rtol: 1e-10, atol: 1e-10));
    }

    [Fact]
    public void Many_iterations_times_one_over_sqrt_trace_give_the_inverse_square_root()
    {
        // The uncoupled iteration amplifies rounding errors that do not commute with Sigma by
        // |1.5 - 0.5(1 + sqrt(r) + r)| per step, r a ratio of eigenvalues: stable for r < 2.4 only,
        // so the covariance used for the 50 steps is well conditioned (eigenvalues in [0.8, 1.5]).
        const int groupSize = 16;
        var generator = new Generator(5);
        var (rotation, _) = linalg.qr(randn(new long[] { 3, groupSize, groupSize }, dtype: float64, generator: generator));
        var spectrum = 0.8 + 0.7 * rand(new long[] { 3, groupSize }, dtype: float64, generator: generator);
        var sigma = rotation.matmul(diag_embed(spectrum)).matmul(rotation.transpose(1, 2));
        var trace = sigma.diagonal(0, 1, 2).sum(-1L).view(3, 1, 1);

        var p = Whitening.NewtonIterations(sigma / trace, 50);

        var (eigenvalues, eigenvectors) = linalg.eigh(sigma);
        var inverseSqrt = eigenvectors.matmul(diag_embed(eigenvalues.rsqrt())).matmul(eigenvectors.transpose(1, 2));
        Assert.True((p / trace.sqrt()).allclose(inverseSqrt, rtol: 1e-9, atol: 1e-9));
    }
}
