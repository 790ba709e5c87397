"""Prints what the Python tests need of the interpreter: PyTorch, its gloo backend and torchrun."""
import importlib.util

import torch
import torch.distributed as dist

print("torch:", torch.__version__)
print("gloo:", dist.is_available() and dist.is_gloo_available())
print("torchrun:", importlib.util.find_spec("torch.distributed.run") is not None)
