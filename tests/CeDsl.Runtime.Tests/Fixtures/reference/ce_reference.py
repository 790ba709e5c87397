"""Self-written PyTorch reference of Channel Equilibrium (CE), batch decorrelation (BD) and
adaptive instance inverse (AII).

Written line by line from CeDsl's semantics page, docs/semantics/channel-equilibrium.md, not from
the authors' code; the TorchSharp modules follow the same page, so agreement with this file is a
second check, not an independent one (the authors' released code is the authority:
../released/). It is deliberately plain, not a fast path. Section numbers in comments refer to
the numbered lines of the semantics page.

State-dict names (PyTorch compatible):
  BatchDecorrelation:      running_mean (G, d, 1), running_wm (G, d, d)
  AdaptiveInstanceInverse: running_scale [1], fc.0.weight, fc.1.weight, fc.1.bias, fc.3.weight
  ChannelEquilibrium:      x_weight [1], running_mean, running_wm, AR.running_scale,
                           AR.fc.0.weight, AR.fc.1.weight, AR.fc.1.bias, AR.fc.3.weight
"""
import torch
from torch import nn
import torch.nn.functional as F


def resolve_group_size(channels, requested):
    """Groups: halve the requested group size (integer division) until it divides C."""
    if channels <= 0 or requested <= 0:
        raise ValueError(f"group size rule: channels ({channels}) and group size ({requested}) must be positive")
    d = requested
    while channels % d != 0:
        d //= 2
    return d


def _check_input(module_name, x, channels):
    if x.dim() != 4:
        raise ValueError(f"{module_name}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{module_name}: expected {channels} channels, got {x.shape[1]}")


def newton_whitening(sigma, iterations):
    """BD lines 3-4: Sigma_N = Sigma / trace(Sigma) per group; P0 = I,
    P(k+1) = 1.5 P(k) - 0.5 P(k)^3 Sigma_N; returns P(T) with no 1/sqrt(trace) rescaling."""
    d = sigma.shape[-1]
    trace = sigma.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
    sigma_n = sigma / trace[:, None, None]
    p = torch.eye(d, dtype=sigma.dtype, device=sigma.device).expand_as(sigma)
    for _ in range(iterations):
        p_cubed = p @ p @ p
        p = 1.5 * p - 0.5 * (p_cubed @ sigma_n)
    return p


class BatchDecorrelation(nn.Module):
    """BD branch alone (the paper's BD-ResNet ablation); also the BD half of ChannelEquilibrium."""

    def __init__(self, channels, group_size=16, iterations=3, pool=False, eps=1e-5, momentum=0.1):
        super().__init__()
        self.channels = channels
        self.group_size = resolve_group_size(channels, group_size)
        self.groups = channels // self.group_size
        self.iterations = iterations
        self.pool = pool
        self.eps = eps
        self.momentum = momentum
        d, g = self.group_size, self.groups
        self.register_buffer("running_mean", torch.zeros(g, d, 1))
        self.register_buffer("running_wm", torch.eye(d).repeat(g, 1, 1))

    def _grouped(self, x):
        # (N, C, H, W) -> (G, d, M): transpose N and C, then flatten; channel c is in group c // d.
        return x.transpose(0, 1).reshape(self.groups, self.group_size, -1)

    def whitening_matrix(self, x):
        """Training: the batch's wm (and the running-statistics update). Eval: running_wm."""
        if not self.training:
            return self.running_wm
        n, c, h, w = x.shape
        m_unpooled = n * h * w
        # Optional 2x2 max pooling: statistics from the pooled tensor, still divided by the unpooled M.
        x_stats = F.max_pool2d(x, kernel_size=2, stride=2) if self.pool else x
        xg = self._grouped(x_stats)
        mean = xg.mean(dim=2, keepdim=True)                                    # line 1
        xc = xg - mean
        eye = torch.eye(self.group_size, dtype=x.dtype, device=x.device)
        sigma = self.eps * eye + (1.0 / m_unpooled) * (xc @ xc.transpose(1, 2))  # line 2
        wm = newton_whitening(sigma, self.iterations)                          # lines 3-4
        with torch.no_grad():                                                  # line 6
            m = self.momentum
            self.running_mean.copy_((1 - m) * self.running_mean + m * mean.detach())
            self.running_wm.copy_((1 - m) * self.running_wm + m * wm.detach())
        return wm

    def decorrelate(self, x):
        wm = self.whitening_matrix(x)
        n, c, h, w = x.shape
        out = wm @ self._grouped(x)                                            # line 5: uncentred X
        return out.reshape(c, n, h, w).transpose(0, 1)

    def forward(self, x):
        _check_input(type(self).__name__, x, self.channels)
        return self.decorrelate(x)


class AdaptiveInstanceInverse(nn.Module):
    """AII branch alone (the paper's AII-ResNet ablation); also CE's `AR` submodule."""

    def __init__(self, channels, reduction=4, momentum=0.1):
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"AdaptiveInstanceInverse: channels ({channels}) // reduction ({reduction}) must be >= 1")
        self.channels = channels
        self.momentum = momentum
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )
        self.register_buffer("running_scale", torch.zeros(1))

    def forward(self, x):
        _check_input("AdaptiveInstanceInverse", x, self.channels)
        n, c, h, w = x.shape
        if h * w < 2:
            raise ValueError("AdaptiveInstanceInverse: H*W must be >= 2 (the unbiased instance variance is undefined for H*W = 1)")
        v = x.reshape(n, c, h * w).var(dim=2, unbiased=True)                   # line 1
        y = self.fc(v)                                                         # line 2
        if self.training:                                                      # line 3
            s = v.mean().sqrt()
            with torch.no_grad():
                m = self.momentum
                self.running_scale.copy_((1 - m) * self.running_scale + m * s.detach())
        else:
            if not bool(torch.all(self.running_scale > 0)):
                raise RuntimeError("AdaptiveInstanceInverse: evaluation before any training step "
                                   "(running_scale is 0; the released code would divide by zero)")
            s = self.running_scale
        return (y / s)[:, :, None, None] * x                                   # line 4


class ChannelEquilibrium(BatchDecorrelation):
    """CE(X) = lambda * BD(X) + (1 - lambda) * AII(X), lambda = sigmoid(x_weight), x_weight init 0."""

    def __init__(self, channels, group_size=16, reduction=4, iterations=3, pool=False, eps=1e-5, momentum=0.1):
        super().__init__(channels, group_size, iterations, pool, eps, momentum)
        self.AR = AdaptiveInstanceInverse(channels, reduction, momentum)
        self.x_weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        _check_input("ChannelEquilibrium", x, self.channels)
        lam = torch.sigmoid(self.x_weight)
        return lam * self.decorrelate(x) + (1 - lam) * self.AR(x)
