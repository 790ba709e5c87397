using CeDsl.Layers;

namespace CeDsl.Runtime.Tests.Layers;

public class GroupSizeRuleTests
{
    [Theory]
    [InlineData(24, 16, 8)]
    [InlineData(116, 16, 4)]
    [InlineData(232, 16, 8)]
    [InlineData(64, 64, 64)]
    [InlineData(256, 16, 16)]
    [InlineData(8, 16, 8)]
    [InlineData(3, 16, 1)]
    [InlineData(96, 64, 32)]
    public void Halves_the_requested_group_size_until_it_divides_the_channels(long channels, int requested, int expected)
    {
        Assert.Equal(expected, GroupSizeRule.Resolve(channels, requested));
    }

    [Theory]
    [InlineData(24, 16, 8, 3)]
    [InlineData(116, 16, 4, 29)]
    [InlineData(232, 16, 8, 29)]
    [InlineData(64, 64, 64, 1)]
    public void Modules_use_the_halved_group_size_and_contiguous_groups(long channels, int requested, int groupSize, int groups)
    {
        using var ce = new ChannelEquilibrium(channels, requested);
        Assert.Equal((channels, groupSize, groups), (ce.Channels, ce.GroupSize, ce.Groups));
        using var bd = new BatchDecorrelation(channels, requested);
        Assert.Equal((channels, groupSize, groups), (bd.Channels, bd.GroupSize, bd.Groups));
        Assert.Equal(new long[] { groups, groupSize, groupSize }, ce.state_dict()["running_wm"].shape);
    }

    [Theory]
    [InlineData(0, 16)]
    [InlineData(-4, 16)]
    [InlineData(64, 0)]
    [InlineData(64, -16)]
    public void Rejects_non_positive_arguments(long channels, int requested)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GroupSizeRule.Resolve(channels, requested));
    }
}
