using CeDsl.Generator.Model;

namespace CeDsl.Generator.Validation;

/// <summary>The shape of the tensor between layers: (N, C, H, W), or (N, C) once flattened.</summary>
internal sealed record Shape(bool Flat, Dim C, Dim H, Dim W)
{
    public static Shape Map(Dim c, Dim h, Dim w) => new(false, c, h, w);

    public static Shape Features(Dim c) => new(true, c, Dim.Of(1), Dim.Of(1));
}
