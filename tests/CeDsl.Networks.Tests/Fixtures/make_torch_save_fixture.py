"""Writes ce_resnet20_dataparallel.pth, read by the zoo's and the command line's PyTorch-file tests.

    cd tests/CeDsl.Networks.Tests/Fixtures && /usr/bin/python3 make_torch_save_fixture.py

The state of ce_resnet20_pytorch.safetensors (see make_zoo_fixtures.py) saved by PyTorch's own torch.save the
way the CE authors' released checkpoints (and the PyTorch ImageNet example they follow) are: a dict with
"epoch", "arch", "best_acc1" and "state_dict", whose keys carry nn.DataParallel's "module." prefix.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "CeDsl.Runtime.Tests", "Fixtures"))
import make_safetensors_fixture as safetensors  # noqa: E402  the independent safetensors reader

_, _, state = safetensors.load(os.path.join(HERE, "ce_resnet20_pytorch.safetensors"))
checkpoint = {"epoch": 2, "arch": "ce_resnet20", "best_acc1": torch.tensor(10.0),
              "state_dict": {"module." + name: tensor for name, tensor in state.items()}}
torch.save(checkpoint, os.path.join(HERE, "ce_resnet20_dataparallel.pth"))
