"""Channel Equilibrium (CE) and its two branches: batch decorrelation (BD) and adaptive instance
inverse (AII). The PyTorch twins of CeDsl.Layers.ChannelEquilibrium, BatchDecorrelation and
AdaptiveInstanceInverse: same state-dict names, shapes and numbers (docs/semantics/channel-equilibrium.md).

With ``sync = True`` (see :func:`cedsl_torch.sync_batch_statistics`) the batch statistics are
combined over the ranks of ``process_group``, so that R ranks of B images compute what one process
computes on R*B images.
"""
import torch
from torch import nn
import torch.nn.functional as F

from . import distributed


def resolve_group_size(channels: int, requested: int) -> int:
    """The requested group size, halved (integer division) until it divides the channel count."""
    if channels <= 0 or requested <= 0:
        raise ValueError(f"the channel count ({channels}) and the group size ({requested}) must be positive")
    group_size = requested
    while channels % group_size != 0:
        group_size //= 2
    return group_size


def check_input(module: str, x: torch.Tensor, channels: int, dtype: torch.dtype, needs_instance_variance=False, pooled=False):
    """Rank, channel count, element type and the spatial extent the module needs, as the .NET layers check them."""
    if x.dim() != 4:
        raise ValueError(f"{module}: expected a 4-D input (N, C, H, W), got shape {list(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{module}: the module was built for {channels} channels, the input {list(x.shape)} has {x.shape[1]}")
    if x.numel() == 0:
        raise ValueError(f"{module}: the input {list(x.shape)} is empty")
    if x.dtype != dtype:
        raise ValueError(f"{module}: the module holds {dtype} state, the input is {x.dtype}")
    if needs_instance_variance and x.shape[2] * x.shape[3] == 1:
        raise ValueError(f"{module}: H*W = 1 (input {list(x.shape)}): the per-instance variance over H*W "
                         "(divisor H*W - 1) is undefined; place this block where the map has at least 2 positions")
    if pooled and (x.shape[2] < 2 or x.shape[3] < 2):
        raise ValueError(f"{module}: the 2x2 max-pooling before the covariance needs H >= 2 and W >= 2, the input is {list(x.shape)}")


def newton_iterations(normalized_covariance: torch.Tensor, iterations: int) -> torch.Tensor:
    """P0 = I, P(k+1) = 1.5 P(k) - 0.5 P(k)^3 Sigma_N; returns P(T), NOT rescaled by 1/sqrt(trace)."""
    groups, d, _ = normalized_covariance.shape
    p = torch.eye(d, dtype=normalized_covariance.dtype, device=normalized_covariance.device).expand(groups, d, d)
    for _ in range(iterations):
        p = 1.5 * p - 0.5 * (p @ p @ p @ normalized_covariance)
    return p


def grouped(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, C, H, W) -> (G, d, N*H*W): channel c is in group c // d, columns are the batch's positions."""
    return x.transpose(0, 1).reshape(groups, x.shape[1] // groups, -1)


def apply_map(wm: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """wm (G, d, d) applied to every position of the UNCENTRED x (N, C, H, W)."""
    n, c, h, w = x.shape
    groups, d, _ = wm.shape
    return (wm @ x.reshape(n, groups, d, h * w)).reshape(n, c, h, w)


class _GroupWhitening(nn.Module):
    """The BD state and math shared by BatchDecorrelation and ChannelEquilibrium (same buffer names in both)."""

    def __init__(self, channels, group_size, iterations, pool, eps, momentum):
        super().__init__()
        if iterations <= 0 or not eps > 0 or not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: iterations must be positive, eps positive, momentum in [0, 1]")
        self.channels = channels
        self.group_size = resolve_group_size(channels, group_size)
        self.groups = channels // self.group_size
        self.iterations = iterations
        self.pool = pool
        self.eps = eps
        self.momentum = momentum
        self.sync = False
        self.process_group = None
        self.register_buffer("running_mean", torch.zeros(self.groups, self.group_size, 1))
        self.register_buffer("running_wm", torch.eye(self.group_size).repeat(self.groups, 1, 1))

    def extra_repr(self):
        return (f"{self.channels}, group_size={self.group_size}, iterations={self.iterations}, pool={self.pool}, "
                f"eps={self.eps}, momentum={self.momentum}, sync={self.sync}")

    def whitening_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """Training: the batch's wm, differentiable, after updating the running statistics. Evaluation: running_wm."""
        if not self.training:
            return self.running_wm
        n, _, h, w = x.shape
        statistics_input = F.max_pool2d(x, kernel_size=2, stride=2) if self.pool else x
        columns = grouped(statistics_input, self.groups)
        mean = columns.mean(dim=-1)
        centred = columns - mean[..., None]
        scatter = centred @ centred.transpose(1, 2)
        # The covariance is divided by the UNPOOLED count M = N*H*W, pooled or not.
        unpooled = n * h * w
        if self.sync:
            mean, scatter, unpooled = distributed.combine_scatter(mean, scatter, columns.shape[-1], unpooled, self.process_group)
        eye = torch.eye(self.group_size, dtype=x.dtype, device=x.device)
        sigma = self.eps * eye + scatter / unpooled
        trace = sigma.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
        wm = newton_iterations(sigma / trace[:, None, None], self.iterations)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach()[..., None])
            self.running_wm.mul_(1 - self.momentum).add_(self.momentum * wm.detach())
        return wm


class BatchDecorrelation(_GroupWhitening):
    """BD alone (the paper's BD-ResNet ablation): wm @ X per group of d contiguous channels, on the
    uncentred X; wm = T Newton steps on the trace-normalized group covariance (training) or
    running_wm (evaluation). State: ``running_mean`` (G, d, 1), ``running_wm`` (G, d, d)."""

    def __init__(self, channels, group_size=16, iterations=3, pool=False, eps=1e-5, momentum=0.1):
        super().__init__(channels, group_size, iterations, pool, eps, momentum)

    def forward(self, x):
        check_input(type(self).__name__, x, self.channels, self.running_wm.dtype, pooled=self.pool and self.training)
        return apply_map(self.whitening_matrix(x), x)


class AdaptiveInstanceInverse(nn.Module):
    """AII alone (the paper's AII-ResNet ablation) and CE's ``AR`` branch: X[n, c] * y[n, c] / s, with
    y = Sigmoid(Linear(ReLU(LayerNorm(Linear(v))))) of the unbiased per-instance variance v over H*W and
    s = sqrt(mean of v) in training, running_scale in evaluation. State: ``running_scale`` [1],
    ``fc.0.weight`` (C/r, C), ``fc.1.weight``, ``fc.1.bias`` (C/r), ``fc.3.weight`` (C, C/r)."""

    def __init__(self, channels, reduction=4, momentum=0.1):
        super().__init__()
        hidden = channels // reduction if reduction > 0 else 0
        if channels <= 0 or hidden < 1:
            raise ValueError(f"{type(self).__name__}: the channel count ({channels}) must be positive and C / r >= 1 (r = {reduction})")
        self.channels = channels
        self.reduction = reduction
        self.momentum = momentum
        self.sync = False
        self.process_group = None
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )
        self.register_buffer("running_scale", torch.zeros(1))

    def extra_repr(self):
        return f"{self.channels}, reduction={self.reduction}, momentum={self.momentum}, sync={self.sync}"

    def factor(self, variance: torch.Tensor) -> torch.Tensor:
        """The (N, C) factor y / s from the (N, C) instance variance; in training it updates running_scale."""
        gate = self.fc(variance)
        if not self.training:
            if not bool(torch.all(self.running_scale > 0)):
                raise RuntimeError(f"{type(self).__name__}: evaluation before any training step: running_scale is "
                                   f"{self.running_scale.item()}, and the evaluation output divides by it")
            return gate / self.running_scale
        total, count = variance.sum(), variance.numel()
        if self.sync:
            total, count = distributed.combine_sum(total, count, self.process_group)
        scale = (total / count).sqrt()
        with torch.no_grad():
            self.running_scale.mul_(1 - self.momentum).add_(self.momentum * scale.detach())
        return gate / scale

    def forward(self, x):
        check_input(type(self).__name__, x, self.channels, self.running_scale.dtype, needs_instance_variance=True)
        return self.factor(instance_variance(x))[..., None, None] * x


def instance_variance(x: torch.Tensor) -> torch.Tensor:
    """(N, C) unbiased variance of every (sample, channel) over its H*W positions."""
    return x.flatten(2).var(dim=2, unbiased=True)


class ChannelEquilibrium(_GroupWhitening):
    """CE(X) = lambda * BD(X) + (1 - lambda) * AII(X), lambda = Sigmoid(x_weight) (x_weight initially 0).
    State: ``x_weight`` [1], ``running_mean`` (G, d, 1), ``running_wm`` (G, d, d) and the AII as ``AR``."""

    def __init__(self, channels, group_size=16, reduction=4, iterations=3, pool=False, eps=1e-5, momentum=0.1):
        super().__init__(channels, group_size, iterations, pool, eps, momentum)
        self.AR = AdaptiveInstanceInverse(channels, reduction, momentum)
        self.x_weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        check_input(type(self).__name__, x, self.channels, self.running_wm.dtype,
                    needs_instance_variance=True, pooled=self.pool and self.training)
        lam = torch.sigmoid(self.x_weight)
        decorrelated = apply_map(self.whitening_matrix(x), x)
        return lam * decorrelated + (1 - lam) * self.AR.factor(instance_variance(x))[..., None, None] * x
