"""Squeeze-and-Excitation, the paper's SE baseline: the twin of CeDsl.Layers.SqueezeExcitation."""
from torch import nn

from .channel_equilibrium import check_input


class SqueezeExcitation(nn.Module):
    """X * Sigmoid(fc2(ReLU(fc1(global average pool of X)))), both linear layers with bias.
    State: ``fc.0.weight`` (C/r, C), ``fc.0.bias``, ``fc.2.weight`` (C, C/r), ``fc.2.bias``."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = channels // reduction if reduction > 0 else 0
        if channels <= 0 or hidden < 1:
            raise ValueError(f"SqueezeExcitation: the channel count ({channels}) must be positive and C / r >= 1 (r = {reduction})")
        self.channels = channels
        self.reduction = reduction
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def extra_repr(self):
        return f"{self.channels}, reduction={self.reduction}"

    def forward(self, x):
        check_input("SqueezeExcitation", x, self.channels, self.fc[0].weight.dtype)
        return self.fc(x.mean(dim=(2, 3)))[..., None, None] * x
