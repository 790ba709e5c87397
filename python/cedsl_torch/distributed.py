"""Batch statistics synchronized across the ranks of a ``torch.distributed`` process group (SyncCE,
SyncBN), so that R ranks of B images each compute what one process computes on R*B images: outputs,
gradients and running statistics.

Every rank contributes its local statistics (a count, means and centred sums of squares); one
all-gather gives every rank all of them, and each rank combines them in float64 with the parallel
form of the centred sums (Chan et al.), as exact as one process's centred sums. The gather is
differentiable: its backward all-reduces the gradient of every rank's copy of the gathered tensor,
so each rank's statistics receive the gradient of ALL ranks' losses, as in one process.

Works with every backend (gloo on CPU, NCCL on GPUs). PyTorch's own ``nn.SyncBatchNorm`` refuses
CPU tensors in PyTorch 1.13, hence :class:`SyncBatchNorm` here.
"""
import torch
import torch.distributed as dist
from torch import nn
import torch.nn.functional as F


class _AllGather(torch.autograd.Function):
    """(R, *shape): every rank's ``tensor``, stacked in rank order; differentiable."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        pieces = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        dist.all_gather(pieces, tensor.contiguous(), group=group)
        return torch.stack(pieces)

    @staticmethod
    def backward(ctx, grad):
        # Each rank holds the gradient of its own loss with respect to every rank's contribution;
        # the sum over ranks of row r is what rank r's statistics owe.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.rank], None


def all_gather(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Differentiable all-gather: (R, *tensor.shape), row r from rank r of ``group`` (default: the world)."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("synchronized batch statistics need torch.distributed to be initialized "
                           "(torchrun and dist.init_process_group); turn the synchronization off to train in one process")
    return _AllGather.apply(tensor, group or dist.group.WORLD)


def combine_moments(count: int, mean: torch.Tensor, centred: torch.Tensor, group=None):
    """Combines every rank's (count, mean, centred sums) into the whole batch's.

    ``mean`` has any shape S; ``centred`` is the sum over the rank's samples of (x - mean)(x - mean)^T
    with shape S + (d,) (a scatter matrix per row of S) or the sum of (x - mean)^2 with shape S.
    Returns (total count, mean, centred sums), on every rank.
    """
    dtype = mean.dtype
    packed = torch.cat([mean.new_tensor([count], dtype=torch.float64),
                        mean.to(torch.float64).flatten(), centred.to(torch.float64).flatten()])
    rows = all_gather(packed, group)
    counts = rows[:, 0].detach()
    total = counts.sum()
    means = rows[:, 1:1 + mean.numel()].reshape(-1, *mean.shape)
    sums = rows[:, 1 + mean.numel():].reshape(-1, *centred.shape)
    weights = counts.reshape(-1, *([1] * mean.dim()))
    combined_mean = (weights * means).sum(0) / total
    deviation = means - combined_mean
    if centred.dim() > mean.dim():
        between = (weights[..., None] * deviation[..., :, None] * deviation[..., None, :]).sum(0)
    else:
        between = (weights * deviation * deviation).sum(0)
    return int(total.item()), combined_mean.to(dtype), (sums.sum(0) + between).to(dtype)


def combine_scatter(mean, scatter, count, unpooled, group=None):
    """CE/BD: the batch's group means (G, d), scatter matrices (G, d, d) and unpooled count M over all ranks."""
    total, mean, scatter = combine_moments(count, mean, scatter, group)
    # Every rank has the same H and W: pooled and unpooled counts keep one ratio, whatever the batch sizes.
    return mean, scatter, total * unpooled // count


def combine_sum(total: torch.Tensor, count: int, group=None):
    """AII: the sum of the instance variances and their count over all ranks."""
    packed = torch.stack([total.to(torch.float64), total.new_tensor(count, dtype=torch.float64)])
    rows = all_gather(packed, group)
    return rows[:, 0].sum().to(total.dtype), int(rows[:, 1].detach().sum().item())


class SyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the whole distributed batch; the state
    (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``) is BatchNorm2d's.
    Evaluation is plain BatchNorm2d."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, process_group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def forward(self, x):
        self._check_input_dim(x)
        if not self.training:
            return super().forward(x)
        count = x.numel() // x.shape[1]
        mean = x.mean(dim=(0, 2, 3))
        centred = ((x - mean[None, :, None, None]) ** 2).sum(dim=(0, 2, 3))
        count, mean, centred = combine_moments(count, mean, centred, self.process_group)
        variance = centred / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(factor * mean.detach())
                self.running_var.mul_(1 - factor).add_(factor * variance.detach() * count / max(count - 1, 1))
        normalized = (x - mean[None, :, None, None]) * torch.rsqrt(variance + self.eps)[None, :, None, None]
        if self.affine:
            normalized = normalized * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return normalized

    @classmethod
    def from_batch_norm(cls, bn: nn.BatchNorm2d, process_group=None):
        """A SyncBatchNorm with ``bn``'s configuration, parameters and buffers (the same tensors)."""
        sync = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, process_group)
        sync.training = bn.training
        for name, parameter in bn.named_parameters(recurse=False):
            setattr(sync, name, parameter)
        for name, buffer in bn.named_buffers(recurse=False):
            sync._buffers[name] = buffer
        return sync


def sync_batch_statistics(model: nn.Module, process_group=None) -> nn.Module:
    """The SyncCE / SyncBN switch: every CE, BD and AII module of ``model`` combines its batch
    statistics over ``process_group`` (default: the world), and every ``nn.BatchNorm2d`` is replaced by a
    :class:`SyncBatchNorm` holding the same tensors. In place; returns ``model`` (or its replacement when
    ``model`` itself is a BatchNorm2d). Call it before wrapping the model in DistributedDataParallel."""
    from .channel_equilibrium import AdaptiveInstanceInverse, _GroupWhitening

    if type(model) is nn.BatchNorm2d:
        return SyncBatchNorm.from_batch_norm(model, process_group)
    if isinstance(model, (_GroupWhitening, AdaptiveInstanceInverse)):
        model.sync, model.process_group = True, process_group
    for name, child in model.named_children():
        converted = sync_batch_statistics(child, process_group)
        if converted is not child:
            setattr(model, name, converted)
    return model
