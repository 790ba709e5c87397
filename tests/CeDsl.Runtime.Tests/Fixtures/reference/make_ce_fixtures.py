"""Writes the cross-check fixtures (float64 safetensors files) from ce_reference.py.

    cd tests/CeDsl.Runtime.Tests/Fixtures/reference && /usr/bin/python3 make_ce_fixtures.py

Deterministic: fixed seeds, CPU, float64; running it again rewrites byte-identical files
(checked by --check, which regenerates in memory and compares with the files on disk).
See README.md in this folder for the tensor names.
"""
import hashlib
import os
import sys

import torch

from ce_reference import AdaptiveInstanceInverse, BatchDecorrelation, ChannelEquilibrium

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import make_safetensors_fixture as safetensors  # noqa: E402  the one writer and reader of the fixtures

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 3

# name, module kind, constructor arguments, input shape (N, C, H, W), seed
CONFIGS = [
    ("ce_c32_g16", "ChannelEquilibrium", dict(channels=32, group_size=16), (4, 32, 4, 4), 1),
    ("ce_c24_g16_halved", "ChannelEquilibrium", dict(channels=24, group_size=16), (4, 24, 5, 5), 2),
    ("ce_c16_g8_pool", "ChannelEquilibrium", dict(channels=16, group_size=8, pool=True), (2, 16, 8, 8), 3),
    ("bd_c24_g16_halved", "BatchDecorrelation", dict(channels=24, group_size=16), (4, 24, 4, 4), 4),
    ("aii_c16", "AdaptiveInstanceInverse", dict(channels=16), (4, 16, 4, 4), 5),
]
MODULES = {
    "ChannelEquilibrium": ChannelEquilibrium,
    "BatchDecorrelation": BatchDecorrelation,
    "AdaptiveInstanceInverse": AdaptiveInstanceInverse,
}

# ---------------------------------------------------------------- fixture content
def bn_like_batch(shape, generator, mixing, gamma, beta):
    """Looks like a BN output with affine applied: per-channel scale and shift, correlated channels."""
    z = torch.randn(shape, generator=generator, dtype=torch.float64)
    mixed = torch.einsum("dc,nchw->ndhw", mixing, z)
    return gamma[None, :, None, None] * mixed + beta[None, :, None, None]


def randomise_parameters(module, generator):
    """Non-trivial weights: lambda != 0.5, LayerNorm affine != (1, 0), gate not saturated."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("x_weight"):
                p.copy_(torch.tensor([0.8], dtype=p.dtype))  # lambda = sigmoid(0.8) ~ 0.69
            elif name.endswith("fc.1.weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            elif name.endswith("fc.1.bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            else:
                p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) / p.shape[1] ** 0.5)


def build_fixture(kind, kwargs, shape, seed):
    torch.manual_seed(seed)  # default nn.Linear init, overwritten below; keeps the run reproducible
    generator = torch.Generator().manual_seed(seed)
    module = MODULES[kind](**kwargs).double()
    randomise_parameters(module, generator)
    c = shape[1]
    mixing = torch.eye(c, dtype=torch.float64) + 0.4 * torch.randn((c, c), generator=generator, dtype=torch.float64) / c ** 0.5
    gamma = 0.5 + torch.rand(c, generator=generator, dtype=torch.float64)
    beta = 0.5 * torch.randn(c, generator=generator, dtype=torch.float64)

    tensors = {f"init.{k}": v.clone() for k, v in module.state_dict().items()}
    module.train()
    for step in range(1, STEPS + 1):
        x = bn_like_batch(shape, generator, mixing, gamma, beta)
        tensors[f"step{step}.x"] = x
        if step == 1:
            upstream = torch.randn(shape, generator=generator, dtype=torch.float64)
            xg = x.clone().requires_grad_(True)
            module.zero_grad(set_to_none=True)
            out = module(xg)
            (out * upstream).sum().backward()
            tensors["step1.out"] = out.detach()
            tensors["step1.grad_out"] = upstream
            tensors["step1.grad_x"] = xg.grad
            for name, p in module.named_parameters():
                tensors[f"step1.grad.{name}"] = p.grad.clone()
        else:
            with torch.no_grad():
                module(x)
    for name, buf in module.named_buffers():
        tensors[f"after3.{name}"] = buf.clone()

    module.eval()
    x_eval = bn_like_batch(shape, generator, mixing, gamma, beta)
    with torch.no_grad():
        tensors["eval.x"] = x_eval
        tensors["eval.out"] = module(x_eval)

    metadata = {
        "module": kind,
        "channels": str(c),
        "input_shape": "x".join(str(s) for s in shape),
        "steps": str(STEPS),
        "generator": "make_ce_fixtures.py (ce_reference.py)",
        "torch": torch.__version__.split("a")[0],
    }
    if kind != "AdaptiveInstanceInverse":
        metadata.update(
            group_size=str(kwargs.get("group_size", 16)),
            resolved_group_size=str(module.group_size),
            groups=str(module.groups),
            iterations=str(module.iterations),
            pool=str(module.pool).lower(),
            eps=repr(module.eps),
            momentum=repr(module.momentum),
        )
    if kind != "BatchDecorrelation":
        aii = module.AR if kind == "ChannelEquilibrium" else module
        metadata.update(reduction=str(c // aii.fc[0].out_features), momentum=repr(aii.momentum))
    return tensors, metadata


def main(argv):
    check = "--check" in argv
    status = 0
    total = 0
    for name, kind, kwargs, shape, seed in CONFIGS:
        tensors, metadata = build_fixture(kind, kwargs, shape, seed)
        path = os.path.join(HERE, f"{name}.safetensors")
        target = path + ".new" if check else path
        safetensors.save(target, tensors, metadata)
        _, back_metadata, back = safetensors.load(target)
        assert back_metadata == metadata and back.keys() == tensors.keys()
        assert all(torch.equal(back[k], tensors[k]) for k in tensors), name
        with open(target, "rb") as f:
            blob = f.read()
        if check:
            os.remove(target)
            with open(path, "rb") as f:
                same = f.read() == blob
            status |= 0 if same else 1
            print(f"{'same' if same else 'DIFFERENT':9} {name}.safetensors")
        else:
            digest = hashlib.sha256(blob).hexdigest()[:16]
            print(f"{len(blob):8d} bytes  sha256 {digest}  {name}.safetensors  ({len(tensors)} tensors)")
        total += len(blob)
    print(f"{total} bytes in all")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
