"""cedsl_torch: the PyTorch twins of CeDsl's layers (docs/python.md).

Same state-dict names, shapes and numbers as the TorchSharp modules, so weights move between a CeDsl
network and its PyTorch twin unchanged. ``sync_batch_statistics(model)`` turns on SyncCE and SyncBN
for torch.distributed training. The network modules `cedsl export --pytorch` writes import this package.
"""
from . import safetensors
from .channel_equilibrium import AdaptiveInstanceInverse, BatchDecorrelation, ChannelEquilibrium, resolve_group_size
from .distributed import SyncBatchNorm, sync_batch_statistics
from .folded import FoldedAdaptiveInstanceInverse, FoldedChannelEquilibrium, fold
from .network import channel_shuffle, init_torchvision, load_weights, read_state_dict
from .selective import PrunedSelectiveConv2d, SelectiveConv2d, weight_decay_groups
from .squeeze_excitation import SqueezeExcitation

__all__ = [
    "AdaptiveInstanceInverse", "BatchDecorrelation", "ChannelEquilibrium", "FoldedAdaptiveInstanceInverse",
    "FoldedChannelEquilibrium", "PrunedSelectiveConv2d", "SelectiveConv2d", "SqueezeExcitation", "SyncBatchNorm",
    "channel_shuffle", "fold", "init_torchvision", "load_weights", "read_state_dict", "resolve_group_size", "safetensors",
    "sync_batch_statistics", "weight_decay_groups",
]

