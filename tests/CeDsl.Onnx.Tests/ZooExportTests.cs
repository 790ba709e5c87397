using CeDsl.Architecture;
using CeDsl.Folding;
using CeDsl.Networks;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Onnx.Tests;

/// <summary>
/// Every zoo network, in its evaluation form and folded, trained (parameters perturbed, running statistics from
/// training-mode passes, selective layers with released and shifted channels), exported to ONNX and run in ONNX
/// Runtime with its graph optimizations on and off: the logits equal TorchSharp's within 1e-4 of the largest,
/// at batch 1 and batch 3 of one model (the batch dimension is symbolic).
/// </summary>
public class ZooExportTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string> Names => new(Zoo.Names);

    [Theory]
    [MemberData(nameof(Names))]
    public void ExportedNetworkAndItsFoldedFormComputeTheLogitsInOnnxRuntime(string name)
    {
        var entry = Zoo.Find(name);
        long side = TrainedNetworks.Side(entry);
        using var network = TrainedNetworks.Create(entry, side);
        AssertRunsInOnnxRuntime(name, network, side);

        using var folded = ((IFoldable)network).Fold();
        folded.eval();
        AssertRunsInOnnxRuntime(name + " (folded)", folded, side);
    }

    private static void AssertRunsInOnnxRuntime(string what, nn.Module<Tensor, Tensor> network, long side)
    {
        var architecture = OnnxExport.ArchitectureOf(network, side, side);
        var model = OnnxExport.ToModel(architecture, network.state_dict());
        Assert.All(model.Graph.Node, node => Assert.Equal("", node.Domain));
        long channels = architecture.Input.Channels;
        var batches = new[] { 1L, 3L }.Select(batch => TrainedNetworks.Batch(batch, channels, side, seed: (int)batch)).ToList();
        try
        {
            var expected = batches.Select(b => TrainedNetworks.Evaluate(network, b.Tensor)).ToList();
            foreach (bool optimize in new[] { true, false })
            {
                using var runtime = new OnnxRuntimeModel(model, optimize);
                for (int i = 0; i < batches.Count; i++)
                {
                    var (values, shape) = runtime.Run(batches[i].Values, batches[i].Shape);
                    Assert.Equal([batches[i].Shape[0], .. architecture.Output.Dimensions], shape);
                    double difference = TrainedNetworks.RelativeDifference(expected[i], values);
                    Assert.True(difference <= Tolerance,
                        $"{what}, batch {batches[i].Shape[0]}, graph optimizations {(optimize ? "on" : "off")}: ONNX Runtime's logits differ from TorchSharp's by {difference:G3} of the largest");
                }
            }
        }
        finally
        {
            foreach (var batch in batches) batch.Tensor.Dispose();
        }
    }
}
