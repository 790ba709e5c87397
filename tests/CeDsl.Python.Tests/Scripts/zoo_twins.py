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
small for the large networks, it writes ``grad_difference.<parameter>`` = [max |python - dotnet|, max |dotnet|,
spread] (float64) against CASE.dotnet.safetensors; metadata ``state`` and ``folded_state`` as loaded here.

The spread measures how well the gradients are determined at all: the first step is repeated PERTURBED_STEPS times
with step1.x and every parameter multiplied elementwise by 1 +- PERTURBATION_EPSILONS times the
element type's machine epsilon (random signs), as rounding moves every layer's result, and a gradient's spread is the
largest change of any of its elements. A sum with cancellation (CE's mixing weight, a bias
feeding a training-mode norm) or an instance norm over 2x2 positions changes by far more than the rounding of its own
last operation, and two correct implementations cannot agree better than that. ``spread.step1.grad_x`` is the input
gradient's.
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


PERTURBED_STEPS = 3
PERTURBATION_EPSILONS = 100


def first_step(model, x, grad_out):
    """Training mode with dropout off: the output, the input gradient and every parameter's gradient of sum(out * grad_out)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    x = x.clone().requires_grad_(True)
    out = model(x)
    (out * grad_out).sum().backward()
    gradients = {name: (p.grad if p.grad is not None else torch.zeros_like(p)).detach() for name, p in model.named_parameters()}
    return out.detach(), x.grad.detach(), gradients


def spreads(path, state, dtype, x, grad_out, grad_x, gradients):
    """The largest change of each gradient (and of the input gradient, key None) when x and the parameters move by a few epsilons."""
    generator = torch.Generator().manual_seed(20)
    spread = {name: 0.0 for name in [None, *gradients]}
    delta = PERTURBATION_EPSILONS * torch.finfo(dtype).eps
    moved_by = lambda t: t * (1 + delta * (torch.randint(0, 2, t.shape, generator=generator).to(t.dtype) * 2 - 1))
    for _ in range(PERTURBED_STEPS):
        # Every parameter and the input moved, as rounding moves every layer's result (buffers such as masks kept).
        moved_state = {k: moved_by(v) if k in gradients else v for k, v in state.items()}
        _, moved_x, moved = first_step(build(path, moved_state, dtype), moved_by(x), grad_out)
        spread[None] = max(spread[None], (moved_x - grad_x).abs().max().item())
        for name, gradient in gradients.items():
            spread[name] = max(spread[name], (moved[name] - gradient).abs().max().item())
    return spread


def run(directory, case):
    started, cpu = time.perf_counter(), time.process_time()
    tensors, metadata = safetensors.load(os.path.join(directory, f"{case}.case.safetensors"))
    dotnet, _ = safetensors.load(os.path.join(directory, f"{case}.dotnet.safetensors"))
    dtype = getattr(torch, metadata["dtype"])
    prefixed = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    path = os.path.join(directory, f"{case}.py")
    model = build(path, prefixed("init."), dtype)
    results = {}
    out, grad_x, gradients = first_step(model, tensors["step1.x"], tensors["step1.grad_out"])
    spread = spreads(path, prefixed("init."), dtype, tensors["step1.x"], tensors["step1.grad_out"], grad_x, gradients)
    results["step1.out"] = out
    results["step1.grad_x"] = grad_x
    results["spread.step1.grad_x"] = torch.tensor(spread[None], dtype=torch.float64)
    for name, grad in gradients.items():
        reference = dotnet[f"step1.grad.{name}"].to(torch.float64)
        if reference.shape != grad.shape:
            raise ValueError(f"{case}: the gradient of {name} is {list(grad.shape)} here, {list(reference.shape)} in .NET")
        results[f"grad_difference.{name}"] = torch.tensor(
            [(grad.double() - reference).abs().max().item(), reference.abs().max().item(), spread[name]], dtype=torch.float64)
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
