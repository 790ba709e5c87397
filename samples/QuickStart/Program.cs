using CeDsl.Data;
using CeDsl.Networks;
using CeDsl.Platform;
using CeDsl.Training;
using QuickStart;
using TorchSharp;

// Trains the TinyResNet declared in Networks.cs on the Fashion-MNIST subset embedded in CeDsl.Training
// (1,000 training and 500 test images), saves a checkpoint and loads it back.
NativeHeap.KeepFreedMemory(); // freed activations stay in the process for the next step (docs/guide.md)
string checkpointPath = Path.GetFullPath(args.Length > 0 ? args[0] : "checkpoints/tinyresnet.ckpt");
Directory.CreateDirectory(Path.GetDirectoryName(checkpointPath)!);
torch.manual_seed(1);

using var data = FashionMnist.LoadEmbeddedSubset();
using var model = new TinyResNet();
long parameters = model.parameters().Sum(p => p.numel());
Console.WriteLine($"TinyResNet: {parameters:N0} parameters, CE layers: {string.Join(", ", CeLayers(model))}");

var options = new TrainingOptions
{
    Epochs = 2,
    BatchSize = 50,
    LearningRate = 0.05,
    Seed = 1,
    CheckpointPath = checkpointPath,
};
using (var trainer = new Trainer(model, nameof(TinyResNet), data.Train, options, data.Test))
{
    foreach (var epoch in trainer.Run())
        Console.WriteLine($"epoch {epoch.Epoch}: train loss {epoch.TrainLoss:F3}, train accuracy {epoch.TrainAccuracy:P1}, "
            + $"test accuracy {epoch.TestAccuracy:P1} ({epoch.ImagesPerSecond:F0} images/s)");
}

var info = Checkpoint.ReadInfo(checkpointPath);
Console.WriteLine($"checkpoint: {checkpointPath} ({info.Architecture}, {info.ModelTensors.Count} tensors, step {info.Training?.Position.GlobalStep})");

// A fresh model with the checkpoint's weights classifies the test images exactly as the trained one.
using var restored = new TinyResNet();
Checkpoint.LoadModel(checkpointPath, restored, nameof(TinyResNet));
var normalization = Normalization.Of(data.Train);
var trained = Evaluator.Evaluate(model, data.Test, normalization);
var reloaded = Evaluator.Evaluate(restored, data.Test, normalization);
Console.WriteLine($"test accuracy: trained {trained.Accuracy:P1}, reloaded {reloaded.Accuracy:P1}");

// The paper's networks come ready-made in CeDsl.Networks, by type or by name.
using var zooModel = Zoo.Create("ce-resnet20", inChannels: 1);
Console.WriteLine($"model zoo: {Zoo.Names.Count()} networks; ce-resnet20 for 1-channel images: {zooModel.parameters().Sum(p => p.numel()):N0} parameters");
return trained.Accuracy == reloaded.Accuracy ? 0 : 1;

static IEnumerable<string> CeLayers(torch.nn.Module model) =>
    model.named_modules().Where(m => m.module is CeDsl.Layers.ChannelEquilibrium).Select(m => m.name);
