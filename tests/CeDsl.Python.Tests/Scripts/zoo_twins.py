"""Runs the PyTorch modules written by CeDsl's exporter for zoo networks, given the TorchSharp network's state and
inputs, and records what the .NET test (tests/CeDsl.Python.Tests/ZooTwins) compares with the TorchSharp network.

    /usr/bin/python3 zoo_twins.py DIR CASE...

For every CASE, DIR holds (written by the .NET side):
- CASE.py and CASE_folded.py: the exported network and its folded form;
- CASE.case.safetensors: ``init.*`` (the network's state dict), ``folded.*`` (the folded network's), the inputs
  ``step1.x``, ``step2.x``, ``step3.x``, ``eval.x`` and the upstream gradient ``step1.grad_out``; metadata:
  ``dtype``, ``state`` and ``folded_state`` (the state dicts' names, types and shapes as JSON);
- CASE.dotnet.safetensors: the TorchSharp network's ``step1.grad.<parameter>``.

The protocol (also the .NET side's): training mode with dropout off (its random masks differ between the
frameworks), ``step1.out`` = model(step1.x), loss = sum(out * step1.grad_out), ``step1.grad_x``; two more
training-mode forwards without gradients; ``after3.<buffer>``: every buffer; evaluation mode, ``eval.out``; the
folded network in evaluation mode, ``folded.eval.out``.

Writes CASE.python.safetensors with those tensors, except the parameter gradients: there, to keep the files
small for the large networks, it writes ``grad_difference.<parameter>`` = [max |python - dotnet|, max |dotnet|]
(float64) against CASE.dotnet.safetensors; metadata ``state`` and ``folded_state`` as loaded here.
"""
import contextlib
import importlib.util
import json
import os
import sys
import time

import torch
from torch import nn

from cedsl_torch import safetensors


def load_module(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe(state):
    return json.dumps({name: [str(t.dtype).replace("torch.", ""), list(t.shape)] for name, t in sorted(state.items())})


@contextlib.contextmanager
def initialization_skipped():
    """The modules' random initialization, which load_state_dict overwrites, skipped (a third of this script's time)."""
    names = ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_")
    saved = {name: getattr(nn.init, name) for name in names}
    for name in names:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def build(path, state, dtype):
    with initialization_skipped():
        model = load_module(path).create()
    model = model.to(dtype)
    model.load_state_dict(state, strict=True)
    return model


def run(directory, case):
    started, cpu = time.perf_counter(), time.process_time()
    tensors, metadata = safetensors.load(os.path.join(directory, f"{case}.case.safetensors"))
    dotnet, _ = safetensors.load(os.path.join(directory, f"{case}.dotnet.safetensors"))
    dtype = getattr(torch, metadata["dtype"])
    prefixed = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    model = build(os.path.join(directory, f"{case}.py"), prefixed("init."), dtype)
    results = {}
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    x = tensors["step1.x"].clone().requires_grad_(True)
    out = model(x)
    (out * tensors["step1.grad_out"]).sum().backward()
    results["step1.out"] = out.detach()
    results["step1.grad_x"] = x.grad.detach()
    for name, parameter in model.named_parameters():
        grad = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
        reference = dotnet[f"step1.grad.{name}"].to(torch.float64)
        if reference.shape != grad.shape:
            raise ValueError(f"{case}: the gradient of {name} is {list(grad.shape)} here, {list(reference.shape)} in .NET")
        results[f"grad_difference.{name}"] = torch.tensor(
            [(grad.detach().double() - reference).abs().max().item(), reference.abs().max().item()], dtype=torch.float64)
    with torch.no_grad():
        model(tensors["step2.x"])
        model(tensors["step3.x"])
        for name, buffer in model.named_buffers():
            results[f"after3.{name}"] = buffer.detach().clone()
        model.eval()
        results["eval.out"] = model(tensors["eval.x"])

        folded = build(os.path.join(directory, f"{case}_folded.py"), prefixed("folded."), dtype).eval()
        results["folded.eval.out"] = folded(tensors["eval.x"])

    safetensors.save(os.path.join(directory, f"{case}.python.safetensors"), results,
                     {"state": describe(model.state_dict()), "folded_state": describe(folded.state_dict())})
    print(f"{case}: {time.perf_counter() - started:.1f} s ({time.process_time() - cpu:.1f} s of CPU)", flush=True)


def main():
    directory, cases = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(1)
    for case in cases:
        run(directory, case)


if __name__ == "__main__":
    main()
