using CeDsl.Selective;
using TorchSharp;
using static CeDsl.Runtime.Tests.Selective.SelectiveTestSupport;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.Selective;

public class ShiftTests
{
    private const int Height = 6, Width = 10;

    /// <summary>
    /// Three channels; channel 2 is a copy of channel 0 with the given shift. BN is the identity (eval,
    /// weight 1, bias 0, statistics (0, 1 - eps)) and the input is positive, so the 1x1 convolution with
    /// weights (0, 0, 1) outputs exactly the shifted copy.
    /// </summary>
    private static SelectiveConv2d CopyReader(double shiftX, double shiftY, bool alignCorners)
    {
        var layer = new SelectiveConv2d(3, 1, kernelSize: 1, k: 1, dtype: ScalarType.Float64, alignCorners: alignCorners);
        Assign(layer, "norm.weight", new double[] { 1, 1, 1 });
        Assign(layer, "norm.bias", new double[] { 0, 0, 0 });
        MakeBatchNormIdentityStatistics(layer);
        Assign(layer, "conv.weight", new double[] { 0, 0, 1 });
        Assign(layer, "_ind_ptr", tensor(new long[] { -1, -1, 0 }));
        Assign(layer, "_bias", new double[] { 0, 0, 0, 0, shiftX, shiftY });
        return layer;
    }

    /// <summary>
    /// _bias in units such that the shift is exactly dx, dy pixels: the normalised translation is
    /// _bias / ((H + W) / 4) and one pixel is 2 / (W - 1) normalised units with align_corners, 2 / W without.
    /// </summary>
    private static (double X, double Y) BiasForPixels(int dx, int dy, bool alignCorners)
    {
        double scale = (Height + Width) / 4.0;
        double pixelX = 2.0 / (alignCorners ? Width - 1 : Width), pixelY = 2.0 / (alignCorners ? Height - 1 : Height);
        return (dx * pixelX * scale, dy * pixelY * scale);
    }

    [Theory]
    [InlineData(2, -1, true)]
    [InlineData(-3, 2, true)]
    [InlineData(2, -1, false)]
    [InlineData(1, 1, false)]
    public void Integer_pixel_shift_is_a_translation_with_replicated_borders(int dx, int dy, bool alignCorners)
    {
        using var scope = NewDisposeScope();
        var (biasX, biasY) = BiasForPixels(dx, dy, alignCorners);
        using var layer = CopyReader(biasX, biasY, alignCorners);
        var input = rand(new long[] { 2, 3, Height, Width }, ScalarType.Float64, generator: new Generator(3)) + 0.5;

        var shifted = layer.call(input);

        double[] source = Values(input.select(1, 0)), actual = Values(shifted.select(1, 0));
        int interior = 0;
        for (int n = 0; n < 2; n++)
            for (int y = 0; y < Height; y++)
                for (int x = 0; x < Width; x++)
                {
                    int sourceY = y + dy, sourceX = x + dx;
                    bool inside = sourceY is >= 0 and < Height && sourceX is >= 0 and < Width;
                    int clampedY = Math.Clamp(sourceY, 0, Height - 1), clampedX = Math.Clamp(sourceX, 0, Width - 1);
                    double expected = source[(n * Height + clampedY) * Width + clampedX];
                    Assert.True(Math.Abs(expected - actual[(n * Height + y) * Width + x]) < 1e-9,
                        $"({n}, {y}, {x}) {(inside ? "inside" : "at the border")}: expected {expected}, got {actual[(n * Height + y) * Width + x]}");
                    interior += inside ? 1 : 0;
                }
        Assert.True(interior >= 2 * (Height - 3) * (Width - 3));
    }

    [Fact]
    public void Half_pixel_shift_averages_neighbours()
    {
        using var scope = NewDisposeScope();
        var (biasX, _) = BiasForPixels(1, 0, alignCorners: true);
        using var layer = CopyReader(biasX / 2, 0, alignCorners: true);
        var input = rand(new long[] { 1, 3, Height, Width }, ScalarType.Float64, generator: new Generator(4)) + 0.5;

        double[] source = Values(input.select(1, 0)), actual = Values(layer.call(input).select(1, 0));

        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width - 1; x++)
                Assert.Equal((source[y * Width + x] + source[y * Width + x + 1]) / 2, actual[y * Width + x], 9);
    }

    [Fact]
    public void Channels_that_are_not_copies_are_read_unshifted()
    {
        using var scope = NewDisposeScope();
        using var layer = CopyReader(1.3, -0.4, alignCorners: true);
        Assign(layer, "conv.weight", new double[] { 1, 0, 0 });
        var input = rand(new long[] { 1, 3, Height, Width }, ScalarType.Float64, generator: new Generator(5)) + 0.5;
        Assert.True(layer.call(input).select(1, 0).allclose(input.select(1, 0), rtol: 0, atol: 1e-12));
    }
}
