using CeDsl.Data;
using CeDsl.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Training;

/// <summary>
/// The trainer's steps (schedule, label smoothing, Nesterov momentum, per-group weight decay) match
/// PyTorch 1.13's torch.optim.SGD on the same problem; expected values from pytorch_sgd_reference.py.
/// </summary>
public class TrainerPyTorchParityTests
{
    private sealed class FlatLinear : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc = nn.Linear(4, 3);

        public FlatLinear() : base(nameof(FlatLinear)) => RegisterComponents();

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            return fc.call(input.flatten(1)).MoveToOuterDisposeScope();
        }
    }

    [Fact]
    public void Three_steps_match_PyTorch_SGD()
    {
        byte[] pixels = [.. Enumerable.Range(0, 6).SelectMany(i => Enumerable.Range(0, 4).Select(k => (byte)((i * 37 + k * 11) % 256)))];
        byte[] labels = [.. Enumerable.Range(0, 6).Select(i => (byte)(i % 3))];
        using var dataset = new ImageDataset("Tiny", DatasetSplit.Train, "test", false, pixels, 6, 1, 2, 2, labels, ["a", "b", "c"]);
        using var model = new FlatLinear();
        var state = model.state_dict();
        using (torch.no_grad())
        {
            state["fc.weight"].copy_(torch.tensor(Enumerable.Range(0, 12).Select(i => (float)(i * 0.05 - 0.3)).ToArray()).view(3, 4));
            state["fc.bias"].copy_(torch.tensor(new[] { 0.1f, -0.2f, 0.05f }));
        }
        var options = new TrainingOptions
        {
            Epochs = 3,
            BatchSize = 6,
            Augmentation = null,
            Normalization = new Normalization([0.0], [1.0]),
            LearningRate = 0.5,
            Momentum = 0.9,
            Nesterov = true,
            WeightDecay = 0.01,
            ParameterGroups = [ParameterGroupRule.NoDecayOnOneDimensional()],
            LabelSmoothing = 0.1,
            Schedule = LearningRateSchedule.Step([2], 0.1).WithLinearWarmup(1, startFactor: 0.5),
        };
        using var trainer = new Trainer(model, "FlatLinear", dataset, options);
        var steps = new List<TrainingStep>();
        trainer.StepProgress = new ActionProgress<TrainingStep>(steps.Add);

        trainer.Run();

        Assert.Equal([0.25, 0.5, 0.05], steps.Select(s => Math.Round(s.LearningRate, 12)));
        Assert.Equal([1.08651185, 1.06937432, 1.05151701], steps.Select(s => s.Loss), new Tolerance(1e-6));
        float[] weight = [-0.303694844f, -0.249105304f, -0.19451578f, -0.139926299f, -0.0536308438f, 0.000253814302f,
            0.0541384667f, 0.108023122f, 0.0633122101f, 0.10184478f, 0.140377343f, 0.178909913f];
        float[] bias = [0.229990289f, -0.0863791183f, -0.193611145f];
        Assert.Equal(weight, state["fc.weight"].data<float>().ToArray(), new Tolerance(1e-6));
        Assert.Equal(bias, state["fc.bias"].data<float>().ToArray(), new Tolerance(1e-6));
    }

    private sealed class Tolerance(double tolerance) : IEqualityComparer<double>, IEqualityComparer<float>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;

        public int GetHashCode(float obj) => 0;
    }
}
