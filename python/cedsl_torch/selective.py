"""Selective convolution (Jeong & Shin, ICML 2019): the twins of CeDsl.Selective.SelectiveConv2d and
PrunedSelectiveConv2d, with the expected channel damage matrix (ECDM), dealloc and realloc
(docs/semantics/selective-convolution.md)."""
import math

import torch
from torch import nn
import torch.nn.functional as F

EPSILON = 1e-8
SHIFT_RANGE = 1.5
SHIFT_WEIGHT_DECAY = 1e-5


def expected_activation(bn_weight: torch.Tensor, bn_bias: torch.Tensor) -> torch.Tensor:
    """E[ReLU(N(b, g^2))] per channel, from BN's weight g (its absolute value) and bias b."""
    scale = bn_weight.abs()
    ratio = bn_bias / (scale + EPSILON)
    pdf = torch.exp(-0.5 * ratio * ratio) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(ratio / math.sqrt(2)))
    return scale * pdf + bn_bias * cdf


def ecdm(bn_weight, bn_bias, conv_weight, gate=None) -> torch.Tensor:
    """O x I expected channel damage matrix of BN -> ReLU -> (gate) -> conv (one group)."""
    expected = expected_activation(bn_weight, bn_bias)
    if gate is not None:
        expected = expected * gate
    return conv_weight.sum(dim=(2, 3)) * expected[None, :]


def normalize_ecdm(matrix: torch.Tensor) -> torch.Tensor:
    """|ECDM| with each row divided by (its row sum + 1e-8)."""
    magnitude = matrix.abs()
    return magnitude / (magnitude.sum(dim=1, keepdim=True) + EPSILON)


class SelectiveConv2d(nn.Module):
    """shift (re-allocated channels only) -> BN -> ReLU -> (dropout) -> x * gate -> conv (no bias).
    State: ``norm.*`` (BatchNorm2d), ``conv.weight``, ``is_open`` (I) and, when K > 0, ``_ind_ptr`` (I, int64,
    -1 = not a copy), ``_bias`` (I, 2; the shifts, weight decay 1e-5) and ``_eye`` (2, 3)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=None, dropout=0.0,
                 gamma=0.001, k=3, n_max=None, align_corners=True):
        super().__init__()
        if not 0 <= k <= in_channels or not 0 <= gamma < 1 or not 0 <= dropout < 1:
            raise ValueError(f"SelectiveConv2d: K must be in [0, {in_channels}], gamma and dropout in [0, 1)")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.gamma, self.k, self.n_max, self.align_corners = gamma, k, n_max, align_corners
        self.norm = nn.BatchNorm2d(in_channels)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, self.padding, bias=False)
        self.register_buffer("is_open", torch.ones(in_channels))
        if k > 0:
            self.register_buffer("_ind_ptr", torch.full((in_channels,), -1, dtype=torch.int64))
            self._bias = nn.Parameter(torch.zeros(in_channels, 2))
            self.register_buffer("_eye", torch.eye(2, 3))

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, gamma={self.gamma}, k={self.k}, n_max={self.n_max}")

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SelectiveConv2d: expected an N x {self.in_channels} x H x W input, got {list(x.shape)}")
        x = F.relu(self.norm(self.shift_reallocated_channels(x)))
        if self.drop is not None:
            x = self.drop(x)
        return self.conv(x * self.is_open[:, None, None])

    def shift_reallocated_channels(self, x):
        """Every re-allocated channel becomes its source channel translated by its ``_bias`` (x, y) pixels,
        divided by (H + W) / 4, through an affine grid with bilinear sampling and border padding."""
        if self.k == 0:
            return x
        copies = (self._ind_ptr >= 0).nonzero().flatten()
        count = copies.numel()
        if count == 0:
            return x
        n, _, h, w = x.shape
        translation = self._bias[copies] / ((h + w) / 4.0)
        theta = torch.cat([self._eye[:, :2].expand(count, 2, 2), translation[:, :, None]], dim=2)
        # One transform per copy: the copies are the grid's batch, the samples its channels.
        grid = F.affine_grid(theta, [count, n, h, w], align_corners=self.align_corners)
        sources = x[:, self._ind_ptr[copies]].transpose(0, 1)
        shifted = F.grid_sample(sources, grid, mode="bilinear", padding_mode="border", align_corners=self.align_corners)
        return x.index_copy(1, copies, shifted.transpose(0, 1))

    @torch.no_grad()
    def normalized_ecdm(self) -> torch.Tensor:
        return normalize_ecdm(ecdm(self.norm.weight, self.norm.bias, self.conv.weight, self.is_open))

    @torch.no_grad()
    def dealloc(self):
        """Sorts the channels ascending by their largest normalised damage, finds the first position i where
        the first i + 1 together damage some output by more than gamma, and closes the first i (gate 0,
        ``_ind_ptr`` -1). Returns the released channels, in that order (already closed ones included)."""
        damage = self.normalized_ecdm().double().cpu()
        order = sorted(range(self.in_channels), key=lambda i: damage[:, i].max().item())  # stable: ties keep channel order
        partial = damage[:, order].cumsum(dim=1).max(dim=0).values
        over = (partial > self.gamma).nonzero()
        released = order[:int(over[0])] if over.numel() else []
        if released:
            index = torch.tensor(released, device=self.is_open.device)
            self.is_open.index_fill_(0, index, 0)
            if self.k > 0:
                self._ind_ptr.index_fill_(0, index, -1)
        return released

    @torch.no_grad()
    def realloc(self, generator=None):
        """Fills every closed slot (nothing when K = 0) with a copy of one of the top-K open channels by the
        L2 norm of their normalised-ECDM column (0 for a source with more than N_max copies, and its copies):
        gate opened, conv weights reading the slot zeroed, BN state copied, a new shift uniform in [-1.5, 1.5]
        pixels, ``_ind_ptr`` the source's own source if it is a copy. Returns [(slot, source, root, shift_x, shift_y)]."""
        if self.k == 0:
            return []
        open_mask = (self.is_open != 0).cpu()
        slots = (~open_mask).nonzero().flatten().tolist()
        if not slots:
            return []
        score = self.normalized_ecdm().double().cpu().square().sum(dim=0).sqrt()
        pointers = self._ind_ptr.cpu()
        if self.n_max is not None:
            for source in pointers[pointers >= 0].unique().tolist():
                if int((pointers == source).sum()) > self.n_max:
                    score[source] = 0
                    score[pointers == source] = 0
        candidates = sorted((i for i in range(self.in_channels) if open_mask[i]), key=lambda i: (-score[i].item(), i))[:self.k]
        if not candidates:
            return []
        copies = []
        for slot in slots:
            source = candidates[int(torch.randint(len(candidates), (1,), generator=generator))]
            shift_x, shift_y = ((2 * torch.rand(2, generator=generator, dtype=torch.float64) - 1) * SHIFT_RANGE).tolist()
            root = int(pointers[source]) if pointers[source] >= 0 else source
            copies.append((slot, source, root, shift_x, shift_y))
        device = self.is_open.device
        slot_index = torch.tensor(slots, device=device)
        source_index = torch.tensor([c[1] for c in copies], device=device)
        self.is_open.index_fill_(0, slot_index, 1)
        self.conv.weight.index_fill_(1, slot_index, 0)
        for state in (self.norm.weight, self.norm.bias, self.norm.running_mean, self.norm.running_var):
            state.index_copy_(0, slot_index, state.index_select(0, source_index))
        self._bias.index_copy_(0, slot_index, torch.tensor([c[3:] for c in copies], dtype=self._bias.dtype, device=device))
        self._ind_ptr.index_copy_(0, slot_index, torch.tensor([c[2] for c in copies], device=device))
        return copies


def weight_decay_groups(model: nn.Module, weight_decay: float):
    """Optimizer parameter groups: every SelectiveConv2d's shifts ``_bias`` with 1e-5 (the reference training),
    every other parameter with ``weight_decay``; empty groups left out."""
    shifts = {id(m._bias) for m in model.modules() if isinstance(m, SelectiveConv2d) and m.k > 0}
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in parameters if id(p) not in shifts], "weight_decay": weight_decay},
              {"params": [p for p in parameters if id(p) in shifts], "weight_decay": SHIFT_WEIGHT_DECAY}]
    return [g for g in groups if g["params"]]


class PrunedSelectiveConv2d(nn.Module):
    """x[:, kept] -> BN -> ReLU -> (dropout) -> conv: a SelectiveConv2d whose closed channels are removed.
    State: ``norm.*`` and ``conv.weight`` for the kept channels, and ``kept`` (int64, ascending input
    channels). Built with every channel kept; :meth:`prune_from` and ``load_state_dict`` resize it."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=None, dropout=0.0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self._resize(in_channels)

    def extra_repr(self):
        return f"{self.kept.numel()} of {self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"

    def _resize(self, channels):
        """New BN, conv and ``kept`` for ``channels`` channels, on the current device and floating type."""
        reference = getattr(self, "conv", None)
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, self.out_channels, self.kernel_size, self.stride, self.padding, bias=False)
        self.register_buffer("kept", torch.arange(channels))
        if reference is not None:
            self.norm.to(reference.weight.device, reference.weight.dtype)
            self.conv.to(reference.weight.device, reference.weight.dtype)
            self.kept = self.kept.to(reference.weight.device)
            self.norm.train(self.training)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PrunedSelectiveConv2d: expected an N x {self.in_channels} x H x W input, got {list(x.shape)}")
        x = F.relu(self.norm(x.index_select(1, self.kept)))
        if self.drop is not None:
            x = self.drop(x)
        return self.conv(x)

    @torch.no_grad()
    def prune_from(self, source: SelectiveConv2d):
        """Keeps the open channels of ``source`` (which must hold no re-allocated copy) with their state."""
        if source.k > 0 and bool((source._ind_ptr >= 0).any()):
            raise ValueError("PrunedSelectiveConv2d: the source holds re-allocated (shifted) channels; only a layer without copies can be pruned")
        kept = (source.is_open != 0).nonzero().flatten()
        if kept.numel() == 0:
            raise ValueError("PrunedSelectiveConv2d: the source has no open channel")
        self._resize(kept.numel())
        self.norm.eps, self.norm.momentum = source.norm.eps, source.norm.momentum
        self.kept.copy_(kept)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(self.norm, name).copy_(getattr(source.norm, name).index_select(0, kept))
        self.norm.num_batches_tracked.copy_(source.norm.num_batches_tracked)
        self.conv.weight.copy_(source.conv.weight.index_select(1, kept))
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "kept")
        if saved is not None and saved.dim() == 1 and 1 <= saved.numel() <= self.in_channels and saved.numel() != self.kept.numel():
            self._resize(saved.numel())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
