using CeDsl.Data;
using CeDsl.Networks;
using CeDsl.Onnx;
using CeDsl.Training;
using TorchSharp;

// Trains the zoo's CE-ResNet-20 for one epoch on the Fashion-MNIST subset embedded in CeDsl (28x28 grayscale
// images, unpadded), folds it for inference and exports the folded network to ONNX, with the normalization and
// the class names in the model's metadata. ../Classify runs the file with ONNX Runtime alone.
string modelPath = Path.GetFullPath(args.Length > 0 ? args[0] : "ce-resnet20.onnx");
torch.manual_seed(1);

using var data = FashionMnist.LoadEmbeddedSubset();
using var network = new CeResNet20(classes: 10, inChannels: 1);
var options = new TrainingOptions { Epochs = 1, BatchSize = 50, LearningRate = 0.05, Seed = 1 };
using (var trainer = new Trainer(network, "ce-resnet20", data.Train, options, data.Test))
{
    foreach (var epoch in trainer.Run())
        Console.WriteLine($"epoch {epoch.Epoch}: train loss {epoch.TrainLoss:F3}, test accuracy {epoch.TestAccuracy:P1}");
}

// The folded form computes the evaluation output with BN folded into the convolutions and CE as one map per sample.
network.eval();
using var folded = network.Fold();
folded.eval();
var normalization = Normalization.Of(data.Train);
var result = Evaluator.Evaluate(folded, data.Test, normalization);

var export = new OnnxExportOptions().WithPreprocessing(normalization, classes: FashionMnist.ClassNames);
folded.ExportOnnx(modelPath, export, inputHeight: 28, inputWidth: 28);
Console.WriteLine($"TorchSharp, folded: accuracy {result.Accuracy:P2} ({Math.Round(result.Accuracy * result.Images)} of {result.Images} test images)");
Console.WriteLine($"wrote {modelPath} ({new FileInfo(modelPath).Length / 1e6:F1} MB)");
