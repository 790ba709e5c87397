"""What the network modules written by CeDsl's exporter (`cedsl export --pytorch`) use besides the layers:
ShuffleNet's channel shuffle, CeDsl's initialization, and loading CeDsl's weight files."""
import torch
from torch import nn

from . import safetensors
from .channel_equilibrium import AdaptiveInstanceInverse, BatchDecorrelation, ChannelEquilibrium
from .folded import FoldedAdaptiveInstanceInverse, FoldedChannelEquilibrium
from .selective import PrunedSelectiveConv2d, SelectiveConv2d
from .squeeze_excitation import SqueezeExcitation

# The prefix of the model's tensors in a CeDsl checkpoint (cedsl train, cedsl fold); the other tensors of such a
# file (SGD momentum, the random generator's state) are training state.
CHECKPOINT_MODEL_PREFIX = "model/"
CHECKPOINT_FORMAT_KEY = "cedsl.checkpoint"

# cedsl_torch's layers: the modules inside them are theirs to initialize.
LAYERS = (AdaptiveInstanceInverse, BatchDecorrelation, ChannelEquilibrium, FoldedAdaptiveInstanceInverse,
          FoldedChannelEquilibrium, PrunedSelectiveConv2d, SelectiveConv2d, SqueezeExcitation)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: channel g * (C / groups) + i moves to i * groups + g."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def init_torchvision(model: nn.Module) -> nn.Module:
    """CeDsl's Init.TorchVision (torchvision's ResNet scheme): every convolution of the network Kaiming-normal
    (fan out, ReLU gain) with zero bias, every norm's weight 1 and bias 0; linear layers and the modules inside
    cedsl_torch's layers keep their own initialization. In place; returns ``model``."""
    def visit(module: nn.Module):
        for child in module.children():
            if isinstance(child, LAYERS):
                continue
            if isinstance(child, nn.Conv2d):
                nn.init.kaiming_normal_(child.weight, mode="fan_out", nonlinearity="relu")
                if child.bias is not None:
                    nn.init.zeros_(child.bias)
            elif isinstance(child, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.InstanceNorm2d)) and child.affine:
                nn.init.ones_(child.weight)
                nn.init.zeros_(child.bias)
            visit(child)

    visit(model)
    return model


def read_state_dict(path: str) -> dict:
    """The state dict in a safetensors file: a plain one (CeDsl's StateDict.Save, this package's ``safetensors.save``)
    or a CeDsl checkpoint, whose ``model/`` tensors are the model's."""
    tensors, metadata = safetensors.load(path)
    if CHECKPOINT_FORMAT_KEY in metadata:
        state = {name[len(CHECKPOINT_MODEL_PREFIX):]: t for name, t in tensors.items() if name.startswith(CHECKPOINT_MODEL_PREFIX)}
        if not state:
            raise ValueError(f"'{path}' is a CeDsl checkpoint without model tensors ({CHECKPOINT_MODEL_PREFIX}...)")
        return state
    return tensors


def load_weights(model: nn.Module, path: str) -> nn.Module:
    """Loads a CeDsl state dict or checkpoint (safetensors) into ``model`` strictly: every key present, none
    unexpected, every shape equal (``load_state_dict``'s errors name them). Returns ``model``."""
    model.load_state_dict(read_state_dict(path), strict=True)
    return model
