"""Inference-only CE and AII with every constant folded: the twins of CeDsl.Folding.FoldedChannelEquilibrium
and FoldedAdaptiveInstanceInverse (same state-dict names, same evaluation outputs as the unfolded modules)."""
import torch
from torch import nn

from .channel_equilibrium import AdaptiveInstanceInverse, ChannelEquilibrium, check_input, instance_variance, resolve_group_size


class FoldedAdaptiveInstanceInverse(nn.Module):
    """(gate_scale * y)[n, c] * X, y the AII gate of the instance variance. State: ``gate_scale`` [1] and the
    unfolded ``fc.*``. gate_scale is 1 / running_scale alone, (1 - lambda) / running_scale as CE's ``AR``."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        hidden = channels // reduction
        self.channels = channels
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.LayerNorm(hidden), nn.ReLU(),
                                nn.Linear(hidden, channels, bias=False), nn.Sigmoid())
        self.register_buffer("gate_scale", torch.ones(1))

    def factor(self, variance):
        return self.fc(variance) * self.gate_scale

    def forward(self, x):
        check_input(type(self).__name__, x, self.channels, self.gate_scale.dtype, needs_instance_variance=True)
        return self.factor(instance_variance(x))[..., None, None] * x


class FoldedChannelEquilibrium(nn.Module):
    """Per sample one block-diagonal map: weight + diag(AR.gate_scale * y_n), weight = lambda * running_wm.
    State: ``weight`` (G, d, d) and the folded AII as ``AR``."""

    def __init__(self, channels, group_size=16, reduction=4):
        super().__init__()
        self.channels = channels
        self.group_size = resolve_group_size(channels, group_size)
        self.groups = channels // self.group_size
        self.register_buffer("weight", torch.zeros(self.groups, self.group_size, self.group_size))
        self.AR = FoldedAdaptiveInstanceInverse(channels, reduction)

    def forward(self, x):
        check_input(type(self).__name__, x, self.channels, self.weight.dtype, needs_instance_variance=True)
        n, c, h, w = x.shape
        blocks = x.reshape(n, self.groups, self.group_size, h * w)
        maps = self.weight + torch.diag_embed(self.AR.factor(instance_variance(x)).reshape(n, self.groups, self.group_size))
        return (maps @ blocks).reshape(n, c, h, w)


@torch.no_grad()
def fold(module):
    """The folded form of a trained ChannelEquilibrium or AdaptiveInstanceInverse (evaluation outputs equal)."""
    scale_holder = module.AR if isinstance(module, ChannelEquilibrium) else module
    if not isinstance(scale_holder, AdaptiveInstanceInverse):
        raise TypeError(f"fold: expected a ChannelEquilibrium or AdaptiveInstanceInverse, got {type(module).__name__}")
    running_scale = scale_holder.running_scale.double()
    if not bool(torch.all(running_scale > 0)):
        raise ValueError("fold: running_scale is not positive: the module has not been trained")
    like = scale_holder.fc[0].weight
    if isinstance(module, ChannelEquilibrium):
        folded = FoldedChannelEquilibrium(module.channels, module.group_size, scale_holder.reduction)
        gate = folded.AR
        lam = torch.sigmoid(module.x_weight.double())
        folded.weight = (lam * module.running_wm.double()).to(like)
        gate_scale = (1 - lam) / running_scale
    else:
        folded = gate = FoldedAdaptiveInstanceInverse(module.channels, module.reduction)
        gate_scale = 1 / running_scale
    gate.to(like)
    gate.fc.load_state_dict(scale_holder.fc.state_dict())
    gate.gate_scale.copy_(gate_scale)
    return folded.eval()
