"""The Python side of the layer twin checks (tests/CeDsl.Python.Tests/LayerTwins/LayerTwinRun.cs describes the protocol).

    /usr/bin/python3 layer_twins.py DIR

For every DIR/NAME.case.safetensors: builds the cedsl_torch module the metadata names, loads the init.* state
strictly, runs the protocol and writes DIR/NAME.python.safetensors (metadata "state": the module's
state-dict names, dtypes and shapes). It compares nothing: the .NET test does.
"""
import glob
import json
import os
import sys

import torch

import cedsl_torch
from cedsl_torch import safetensors

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def describe_state(module):
    return json.dumps({name: [str(t.dtype).replace("torch.", ""), list(t.shape)] for name, t in module.state_dict().items()},
                      separators=(",", ":"))


def run_case(path):
    tensors, metadata = safetensors.load(path)
    dtype = DTYPES[metadata["dtype"]]
    torch.manual_seed(0)  # constructors draw initial weights; every one of them is overwritten below
    module = getattr(cedsl_torch, metadata["class"])(**json.loads(metadata["arguments"])).to(dtype)
    module.load_state_dict({k[len("init."):]: v for k, v in tensors.items() if k.startswith("init.")}, strict=True)

    results = {}
    if metadata["trains"] == "true":
        module.train()
        x = tensors["step1.x"].clone().requires_grad_(True)
        out = module(x)
        (out * tensors["step1.grad_out"]).sum().backward()
        results["step1.out"] = out.detach()
        results["step1.grad_x"] = x.grad
        for name, parameter in module.named_parameters():
            results[f"step1.grad.{name}"] = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
        with torch.no_grad():
            module(tensors["step2.x"])
            module(tensors["step3.x"])
        for name, buffer in module.named_buffers():
            results[f"after3.{name}"] = buffer.detach().clone()
    module.eval()
    with torch.no_grad():
        results["eval.out"] = module(tensors["eval.x"])
    if "dealloc_gamma" in metadata:
        module.gamma = float(metadata["dealloc_gamma"])
        module.dealloc()
        results["dealloc.is_open"] = module.is_open.detach().double()
    safetensors.save(path.replace(".case.safetensors", ".python.safetensors"), results, {"state": describe_state(module)})


def main(directory):
    cases = sorted(glob.glob(os.path.join(directory, "*.case.safetensors")))
    if not cases:
        sys.exit(f"layer_twins.py: no *.case.safetensors in {directory}")
    for path in cases:
        run_case(path)
        print("ran", os.path.basename(path))


if __name__ == "__main__":
    main(sys.argv[1])
