using CeDsl.Data;
using CeDsl.Selective;
using CeDsl.Training.Tests.Training;
using CeDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Training.Tests.Selective;

public class SelectiveScheduleTests
{
    private static nn.Module<Tensor, Tensor> Model() => nn.Sequential(
        ("conv0", nn.Conv2d(1, 16, 3, padding: 1, bias: false)),
        ("sconv1", new SelectiveConv2d(16, 16, 3, stride: 2, gamma: 0.2, k: 2)),
        ("sconv2", new SelectiveConv2d(16, 16, 1, gamma: 0.2, k: 0)),
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(16, 10)));

    [Theory]
    [InlineData(1, 4, true)]
    [InlineData(2, 4, true)]
    [InlineData(3, 4, false)]
    [InlineData(4, 4, false)]
    [InlineData(1, 1, true)]
    [InlineData(2, 3, true)]
    [InlineData(3, 5, true)]
    [InlineData(4, 5, false)]
    public void AppliesWhileTheEpochIsInTheFirstHalf(int epoch, int epochs, bool applies) =>
        Assert.Equal(applies, SelectiveSchedule.Applies(epoch, epochs));

    [Fact]
    public void TheTrainerRunsDeallocAndReallocAfterTheFirstHalfsEpochsAndCheckpointsTheResult()
    {
        using var data = FashionMnist.LoadEmbeddedSubset();
        using var directory = new TemporaryDirectory();
        torch.manual_seed(7);
        using var model = Model();
        var schedule = new SelectiveSchedule(seed: 7);
        var options = new TrainingOptions
        {
            Epochs = 4, BatchSize = 100, LearningRate = 0.05, Seed = 7, CheckpointPath = directory.File("run.ckpt"),
            EpochHooks = [schedule], ParameterGroups = [SelectiveSchedule.ShiftWeightDecayGroup],
        };
        using var trainer = new Trainer(model, "TinySelective", data.Train, options, data.Test);
        trainer.Run();

        // Two layers, after epochs 1 and 2 only.
        Assert.Equal([(1, "sconv1"), (1, "sconv2"), (2, "sconv1"), (2, "sconv2")], schedule.History.Select(s => (s.Epoch, s.Layer)));
        Assert.Contains(schedule.History, s => s.Released > 0);
        // K = 0 prunes only: no copies; K = 2 re-uses the released slots.
        Assert.All(schedule.History.Where(s => s.Layer == "sconv2"), s => Assert.Equal(0, s.Copies));
        var sconv1 = schedule.History.Where(s => s.Layer == "sconv1").ToList();
        Assert.All(sconv1, s => Assert.Equal(s.Released, s.Copies));
        Assert.True(schedule.History.Where(s => s.Layer == "sconv2").Last().OpenChannels < 16, "gamma 0.2 closes channels of the 1x1 layer");

        // The checkpoint holds the gates as they are after the schedule.
        using var reloaded = Model();
        var tensors = CeDsl.IO.SafeTensors.Load(options.CheckpointPath);
        var gate = tensors[Checkpoint.ModelPrefix + "sconv2.is_open"];
        var layer = (SelectiveConv2d)model.named_modules().Single(m => m.name == "sconv2").module;
        Assert.Equal(layer.OpenChannelCount, (long)gate.sum().item<float>());
    }

    [Fact]
    public void TheShiftGroupHoldsTheShiftsOfTheSelectiveConvolutionsAndNothingElse()
    {
        using var model = nn.Sequential(
            ("conv0", nn.Conv2d(1, 16, 3, padding: 1, bias: true)),
            ("sconv1", new SelectiveConv2d(16, 16, 3, k: 2)),
            ("block", nn.Sequential(("sconv2", new SelectiveConv2d(16, 16, 1, k: 4)), ("pruning", new SelectiveConv2d(16, 16, 1, k: 0)))),
            ("offset", new ChannelOffset(16)),
            ("fc", nn.Linear(16, 10)));
        var group = SelectiveSchedule.ShiftWeightDecayGroup;

        var members = model.named_parameters().Where(p => group.Matches(p.name, p.parameter)).Select(p => p.name);

        Assert.Equal(["sconv1._bias", "block.sconv2._bias"], members);
        Assert.Equal(SelectiveConv2d.ShiftWeightDecay, group.WeightDecay);
        // Checkpoints record the group by its name, the one every run so far recorded, so those runs resume.
        Assert.Equal("*_bias", group.Name);
    }

    /// <summary>A parameter whose name ends like the shifts' without being one.</summary>
    private sealed class ChannelOffset : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Parameter channel_bias;

        public ChannelOffset(long channels) : base(nameof(ChannelOffset))
        {
            channel_bias = nn.Parameter(zeros(channels, 1, 1));
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => input + channel_bias;
    }

    [Fact]
    public void TheSameSeedMakesTheSameChoices()
    {
        // One set of weights and one input for both runs (not the global generator, which tests running in
        // parallel also draw from): the schedule's seed is then the only source of its choices.
        torch.manual_seed(3);
        using var reference = Model();
        var weights = reference.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        using var input = torch.randn([8, 1, 8, 8], generator: new Generator(3));
        IReadOnlyList<SelectiveStep> Run()
        {
            using var model = Model();
            model.load_state_dict(weights);
            model.train();
            using (no_grad()) model.call(input);
            var schedule = new SelectiveSchedule(seed: 11);
            schedule.AfterEpoch(model, 1, 4);
            var layer = (SelectiveConv2d)model.named_modules().Single(m => m.name == "sconv1").module;
            return [.. schedule.History, new SelectiveStep(0, string.Join(",", layer.CopySources()), 0, 0, 0, 0)];
        }
        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void GammaCanBeChangedWithinItsRange()
    {
        using var layer = new SelectiveConv2d(4, 4, 1, gamma: 0.001);
        layer.Gamma = 0.2;
        Assert.Equal(0.2, layer.Gamma);
        Assert.Throws<ArgumentOutOfRangeException>(() => layer.Gamma = 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => layer.Gamma = -0.1);
        Assert.Equal(0.2, layer.Gamma);
    }
}
