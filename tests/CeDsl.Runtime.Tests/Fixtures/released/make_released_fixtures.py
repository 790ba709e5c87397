"""Runs the authors' released CE code and writes what it computes as safetensors fixtures.

    /usr/bin/python3 tests/CeDsl.Runtime.Tests/Fixtures/released/make_released_fixtures.py CENET [--check]

CENET is a checkout of the authors' public repository Tangshitao/CENet (devkit/ops/CE_module.py,
imagenet/models/resnet_v1_ce.py). Their code is NOT part of this repository and is never edited:
its defects are worked around here (see README.md in this folder). Debian 12's python3-torch
(PyTorch 1.13) is all it needs; the safetensors files are written by this repository's own writer
(../make_safetensors_fixture.py). --check regenerates everything in memory and reports whether the
committed files are byte-identical.

Writes
- here, one float64 file per CE case (and BD-only, AII-only, pooling): tensor names as in
  ../reference/README.md (init.*, step1.x/out/grad_out/grad_x, step1.grad.*, step2.x, step3.x,
  after3.*, eval.x, eval.out);
- tests/CeDsl.Networks.Tests/Fixtures/released/ce_resnet50.safetensors: the released CE-ResNet-50
  with weights from a counter-based generator (the recipe and per-tensor SHA-256 in the metadata,
  not the 117 MB of weights) and its evaluation logits in float32 and float64.
"""
import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import sys
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
NETWORKS_FIXTURES = os.path.join(REPOSITORY, "tests", "CeDsl.Networks.Tests", "Fixtures", "released")
sys.path.insert(0, os.path.dirname(HERE))
import make_safetensors_fixture as safetensors  # noqa: E402  the one writer of the fixtures

RELEASED_FILES = ("devkit/ops/CE_module.py", "imagenet/models/resnet_v1_ce.py")
STEPS = 3


# ------------------------------------------------------------------ the released code, as released
def import_released(checkout):
    """Their modules, imported from the checkout as they are."""
    for relative in RELEASED_FILES:
        if not os.path.isfile(os.path.join(checkout, relative)):
            sys.exit(f"{checkout} is not a checkout of Tangshitao/CENet: {relative} is missing")
    sys.path.insert(0, checkout)
    from devkit.ops import CE_module
    from imagenet.models import resnet_v1_ce
    assert resnet_v1_ce.CE is CE_module.CE
    return CE_module, resnet_v1_ce


def released_digests(checkout):
    digests = {}
    for relative in RELEASED_FILES:
        with open(os.path.join(checkout, relative), "rb") as f:
            digests[relative] = hashlib.sha256(f.read()).hexdigest()
    return digests


@contextlib.contextmanager
def quiet():
    """The CE constructor prints its group size; the forward uses baddbmm's deprecated
    positional-scalar overload, which warns."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This overload of baddbmm", category=UserWarning)
        yield


@contextlib.contextmanager
def default_dtype(dtype):
    """CE.forward builds its identity with torch.eye(d) at the DEFAULT dtype, so a float64 module
    fails (baddbmm of a float32 and a float64 tensor) unless float64 is the default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def densify_running_wm(model):
    """running_wm is registered as torch.eye(d).expand(G, d, d): one d x d block seen G times. On the
    CPU its in-place EMA update and load_state_dict's copy_ raise as soon as G > 1. A dense copy has
    the same values, name and shape."""
    for module in model.modules():
        if hasattr(module, "running_wm"):
            module.running_wm = module.running_wm.contiguous()


# ------------------------------------------------------------------ CE cases (float64)
# name, what runs, constructor arguments of the released module, input shape (N, C, H, W)
CE_CASES = [
    ("ce_c64_g16", "CE", dict(num_features=64, num_channels=16), (2, 64, 4, 4)),
    ("ce_c24_g16_halved", "CE", dict(num_features=24, num_channels=16), (4, 24, 5, 5)),
    ("ce_c64_g64_stem", "CE", dict(num_features=64, num_channels=64), (2, 64, 6, 6)),
    ("ce_c116_g16_quartered", "CE", dict(num_features=116, num_channels=16), (2, 116, 3, 3)),
    ("ce_c32_g16_pool", "CE", dict(num_features=32, num_channels=16, pooling=True), (2, 32, 6, 6)),
    ("bd_c24_g16_halved", "BD", dict(num_features=24, num_channels=16), (4, 24, 4, 4)),
    ("aii_c32", "AII", dict(channel=32), (4, 32, 4, 4)),
]


def released_module(ce_module, kind, kwargs):
    with quiet():
        module = ce_module.AdaptiveReweight(**kwargs) if kind == "AII" else ce_module.CE(**kwargs)
    densify_running_wm(module)
    return module.double()


def randomise_parameters(module, kind, generator):
    """Away from the initial values: lambda = sigmoid(0.8) ~ 0.69 (for BD: sigmoid(40) == 1.0
    exactly in float64, so the released CE computes its BD branch alone), LayerNorm affine not
    (1, 0), gate not saturated."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name == "x_weight":
                p.fill_(40.0 if kind == "BD" else 0.8)
            elif name.endswith("fc.1.weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            elif name.endswith("fc.1.bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            else:
                p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) / p.shape[1] ** 0.5)
    if kind == "BD":
        assert torch.sigmoid(module.x_weight).item() == 1.0


def bn_like_batch(shape, generator, mixing, gamma, beta):
    """Looks like a BN output with its affine transform: per-channel scale and shift, correlated channels."""
    z = torch.randn(shape, generator=generator, dtype=torch.float64)
    return gamma[None, :, None, None] * torch.einsum("dc,nchw->ndhw", mixing, z) + beta[None, :, None, None]


def exposed(kind, name):
    """The state the fixture names: BD-only is the released CE with lambda == 1, whose AR branch and
    x_weight are multiplied by exactly 0 and are not part of a BD module."""
    return kind != "BD" or name in ("running_mean", "running_wm")


def make_ce_case(ce_module, seed, kind, kwargs, shape):
    generator = torch.Generator().manual_seed(seed)
    module = released_module(ce_module, kind, kwargs)
    randomise_parameters(module, kind, generator)
    c = shape[1]
    mixing = torch.eye(c, dtype=torch.float64) + 0.4 * torch.randn((c, c), generator=generator, dtype=torch.float64) / c ** 0.5
    gamma = 0.5 + torch.rand(c, generator=generator, dtype=torch.float64)
    beta = 0.5 * torch.randn(c, generator=generator, dtype=torch.float64)

    tensors = {f"init.{k}": v.clone() for k, v in module.state_dict().items() if exposed(kind, k)}
    with quiet(), default_dtype(torch.float64):
        module.train()
        for step in range(1, STEPS + 1):
            x = bn_like_batch(shape, generator, mixing, gamma, beta)
            tensors[f"step{step}.x"] = x
            if step > 1:
                with torch.no_grad():
                    module(x)
                continue
            upstream = torch.randn(shape, generator=generator, dtype=torch.float64)
            xg = x.clone().requires_grad_(True)
            out = module(xg)
            (out * upstream).sum().backward()
            tensors["step1.out"] = out.detach()
            tensors["step1.grad_out"] = upstream
            tensors["step1.grad_x"] = xg.grad
            for name, p in module.named_parameters():
                if exposed(kind, name):
                    tensors[f"step1.grad.{name}"] = p.grad.clone()
        for name, buffer in module.named_buffers():
            if exposed(kind, name):
                tensors[f"after3.{name}"] = buffer.clone()
        module.eval()
        tensors["eval.x"] = bn_like_batch(shape, generator, mixing, gamma, beta)
        with torch.no_grad():
            tensors["eval.out"] = module(tensors["eval.x"])

    metadata = {"module": {"CE": "ChannelEquilibrium", "BD": "BatchDecorrelation", "AII": "AdaptiveInstanceInverse"}[kind],
                "released_call": f"{'AdaptiveReweight' if kind == 'AII' else 'CE'}({', '.join(f'{k}={v}' for k, v in kwargs.items())})",
                "channels": str(c), "input_shape": "x".join(map(str, shape)), "steps": str(STEPS)}
    if kind != "AII":
        metadata.update(group_size=str(kwargs["num_channels"]), resolved_group_size=str(module.num_channels),
                        groups=str(module.num_groups), pool=str(module.pool is not None).lower())
    if kind == "BD":
        metadata["x_weight"] = "40 (sigmoid == 1.0: the AR branch is multiplied by exactly 0)"
    assert all(t.dtype == torch.float64 for t in tensors.values())
    return tensors, metadata


# ------------------------------------------------------------------ CE-ResNet-50 weights from a recipe
# Every tensor is a pure function of (seed, element index): a counter-based generator that is a few
# lines in any language (tests/CeDsl.Networks.Tests/ReleasedCeResNet50Tests.cs has the C# twin), so
# the fixture commits the recipe and a SHA-256 per tensor instead of 117 MB of weights.
GENERATOR = "lowbias32-uniform-v1"


def lowbias32(x):
    """Chris Wellons' 32-bit integer hash (a bijection on uint32)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def unit_uniform(seed, count):
    """r[i] in [-1, 1), a multiple of 2^-23 (exact in float32): the top 24 bits of
    lowbias32(i XOR lowbias32(seed)), centred."""
    key = lowbias32(np.array([seed], dtype=np.uint32))[0]
    bits = lowbias32(np.arange(count, dtype=np.uint32) ^ key) >> np.uint32(8)
    return (bits.astype(np.int64) - (1 << 23)).astype(np.float32) * np.float32(2.0 ** -23)


def f32(value):
    return float(np.float32(value))


def generate(recipe, stored=None):
    """The tensor a recipe describes. float32 arithmetic, rounded after each operation:
    uniform: offset + scale * r[i]; symmetric (G, d, d): scale * r[g*d*d + min(i,j)*d + max(i,j)],
    plus offset on the diagonal; constant: every element equals value; stored: the named tensor of
    the fixture (float16) converted to float32."""
    shape = recipe["shape"]
    if recipe["kind"] == "stored":
        return stored[recipe["tensor"]].float()
    count = int(np.prod(shape, dtype=np.int64))
    if recipe["kind"] == "constant":
        return torch.full(shape, recipe["value"], dtype=torch.int64)
    scale, offset = np.float32(recipe["scale"]), np.float32(recipe["offset"])
    if recipe["kind"] == "uniform":
        values = unit_uniform(recipe["seed"], count) * scale + offset
    elif recipe["kind"] == "symmetric":
        groups, d, _ = shape
        i, j = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
        counter = np.arange(groups)[:, None, None] * d * d + np.minimum(i, j) * d + np.maximum(i, j)
        values = unit_uniform(recipe["seed"], groups * d * d)[counter] * scale
        values[:, np.arange(d), np.arange(d)] += offset
    else:
        raise ValueError(recipe["kind"])
    assert values.dtype == np.float32
    return torch.from_numpy(np.ascontiguousarray(values).reshape(shape))


def sha256(tensor):
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()


def parameter_recipe(name, tensor, seed):
    """Scales a trained network could have: Kaiming-uniform convolutions, BN gammas below 1 (the
    last BN of a block smaller), LayerNorm affine near (1, 0), lambda logits in [-1, 1)."""
    shape = list(tensor.shape)
    leaf = name.rsplit(".", 1)[-1]
    if tensor.dim() == 4:
        scale, offset = math.sqrt(6.0 / (shape[1] * shape[2] * shape[3])), 0.0
    elif name == "fc.weight":
        scale, offset = math.sqrt(3.0 / shape[1]), 0.0
    elif ".AR.fc.0." in name or ".AR.fc.3." in name:
        scale, offset = math.sqrt(3.0 / shape[1]), 0.0
    elif ".AR.fc.1." in name:
        scale, offset = (0.3, 1.0) if leaf == "weight" else (0.3, 0.0)
    elif leaf == "x_weight":
        scale, offset = 1.0, 0.0
    elif name.endswith("bn3.weight") or name.endswith("downsample.1.weight"):
        scale, offset = 0.15, 0.35
    elif leaf == "weight":
        scale, offset = 0.25, 0.75
    elif name.startswith("layer") and (name.endswith("bn1.bias") or name.endswith("bn2.bias")):
        # Most units before the blocks' inner ReLUs active. A BN-ReLU network with random weights
        # amplifies rounding errors layer after layer: with zero betas PyTorch's float32 logits end
        # 4e-5 (of the largest logit) from its float64 ones, too close to the tests' 1e-5 bound for
        # a second float32 implementation; with these (about 85 % of the units active), 2.5e-6.
        scale, offset = 0.1, 0.75
    elif leaf == "bias":
        scale, offset = 0.1, 0.0
    else:
        raise ValueError(f"no recipe for parameter {name}")
    return {"name": name, "dtype": "F32", "shape": shape, "kind": "uniform", "seed": seed,
            "scale": f32(scale), "offset": f32(offset)}


def symmetric_recipe(name, measured, seed):
    """A whitening-matrix-like (G, d, d) buffer: the measured mean diagonal, symmetric
    off-diagonal entries with the measured spread."""
    d = measured.shape[1]
    diagonal = torch.diagonal(measured, dim1=1, dim2=2).double()
    off = measured[:, ~torch.eye(d, dtype=torch.bool)].double()
    return {"name": name, "dtype": "F32", "shape": list(measured.shape), "kind": "symmetric", "seed": seed,
            "scale": f32(math.sqrt(3.0) * off.std().item()), "offset": f32(diagonal.mean().item())}


def spread_recipe(name, measured, seed):
    """Uniform with the measured mean and standard deviation (a scalar: +-10 %)."""
    values = measured.double()
    offset = values.mean().item()
    scale = math.sqrt(3.0) * values.std().item() if values.numel() > 1 else 0.1 * abs(offset)
    return {"name": name, "dtype": "F32", "shape": list(measured.shape), "kind": "uniform", "seed": seed,
            "scale": f32(scale), "offset": f32(offset)}


def calibrate_running_statistics(model, images, seeds):
    """Running statistics as training would leave them, from ONE evaluation-mode pass over a batch
    of images: each BN and CE, when the pass reaches it, first takes its statistics from the input
    it actually gets (layers before it already calibrated), so every layer sees normalised inputs.
    BN means and variances are kept per channel (stored, float16); CE's running_wm, running_mean
    and running_scale follow recipes with the measured mean and spread. Returns the recipes and the
    stored tensors."""
    recipes, stored = {}, {}

    def take_bn(prefix, module, inputs):
        x = inputs[0]
        for leaf, value in (("running_mean", x.mean((0, 2, 3))), ("running_var", x.var((0, 2, 3), unbiased=True))):
            name = f"{prefix}.{leaf}"
            stored[f"state.{name}"] = value.half()
            recipes[name] = {"name": name, "dtype": "F32", "shape": list(value.shape), "kind": "stored", "tensor": f"state.{name}"}
            getattr(module, leaf).copy_(value.half().float())

    def take_ce(prefix, module, inputs):
        momenta = module.momentum, module.AR.momentum
        module.momentum = module.AR.momentum = 1.0  # the running statistics become this batch's
        module.train()
        module.forward(inputs[0])  # forward, not __call__: no hook recursion
        module.eval()
        module.momentum, module.AR.momentum = momenta
        for leaf, make in (("running_wm", symmetric_recipe), ("running_mean", spread_recipe), ("AR.running_scale", spread_recipe)):
            name = f"{prefix}.{leaf}"
            buffer = module.get_buffer(leaf)
            recipes[name] = make(name, buffer.clone(), seeds[name])
            buffer.copy_(generate(recipes[name]))

    handles = []
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            handles.append(module.register_forward_pre_hook(lambda m, i, p=prefix: take_bn(p, m, i)))
        elif hasattr(module, "running_wm"):
            handles.append(module.register_forward_pre_hook(lambda m, i, p=prefix: take_ce(p, m, i)))
    model.eval()
    with torch.no_grad(), quiet():
        model(images)
    for handle in handles:
        handle.remove()
    return recipes, stored


def make_ce_resnet50(resnet_module):
    torch.manual_seed(0)  # their constructor initialises with torch's global generator; every value is replaced below
    with quiet():
        model = resnet_module.resnetv1ce50(num_classes=1000)
    densify_running_wm(model)
    parameters = dict(model.named_parameters())
    assert sum(p.numel() for p in parameters.values()) == 29_331_926
    names = list(model.state_dict().keys())
    seeds = {name: seed for seed, name in enumerate(names, start=1)}
    recipes = {name: parameter_recipe(name, parameters[name], seeds[name]) for name in names if name in parameters}
    with torch.no_grad():
        for name, recipe in recipes.items():
            parameters[name].copy_(generate(recipe))
    for name in names:
        if name.endswith("num_batches_tracked"):
            recipes[name] = {"name": name, "dtype": "I64", "shape": [], "kind": "constant", "value": 500400}

    calibration = generate({"shape": [8, 3, 224, 224], "kind": "uniform", "seed": 100_000, "scale": 1.5, "offset": 0.0})
    calibrated, stored = calibrate_running_statistics(model, calibration, seeds)
    recipes.update(calibrated)
    assert recipes.keys() == set(names)

    state = {name: generate(recipes[name], stored) for name in names}
    model.load_state_dict(state, strict=True)
    spec = [dict(recipes[name], sha256=sha256(state[name])) for name in names]

    input_recipe = {"shape": [2, 3, 224, 224], "kind": "uniform", "seed": 0, "scale": 1.5, "offset": 0.0}
    images = generate(input_recipe)
    model.eval()
    with torch.no_grad(), quiet():
        logits = model(images)
        model64 = model.double()
        with default_dtype(torch.float64):
            logits64 = model64(images.double())
    assert torch.isfinite(logits64).all()
    tensors = {"logits": logits.contiguous(), "logits_float64": logits64.contiguous(), **stored}
    metadata = {
        "generator": GENERATOR,
        "state": json.dumps(spec, separators=(",", ":")),
        "input": json.dumps(dict(input_recipe, sha256=sha256(images)), separators=(",", ":")),
        "released_call": "resnetv1ce50(num_classes=1000), eval(), images of the input recipe",
        "parameters": str(sum(p.numel() for p in parameters.values())),
    }
    return tensors, metadata


# ------------------------------------------------------------------ writing and checking
def write(path, tensors, metadata, check):
    target = path + ".new" if check else path
    safetensors.save(target, tensors, metadata)
    _, back_metadata, back = safetensors.load(target)
    assert back_metadata == metadata and back.keys() == tensors.keys()
    assert all(torch.equal(back[k], tensors[k]) for k in tensors), path
    with open(target, "rb") as f:
        blob = f.read()
    name = os.path.relpath(path, REPOSITORY)
    if check:
        os.remove(target)
        same = os.path.exists(path) and open(path, "rb").read() == blob
        print(f"{'same' if same else 'DIFFERENT':9} {name}")
        return 0 if same else 1
    print(f"{len(blob):9d} bytes  {name}  ({len(tensors)} tensors)")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cenet", help="checkout of Tangshitao/CENet (not part of this repository)")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ce_module, resnet_module = import_released(os.path.abspath(args.cenet))
    common = {"torch": torch.__version__.split("a")[0],
              "released_sha256": json.dumps(released_digests(os.path.abspath(args.cenet)), separators=(",", ":")),
              "made_by": "tests/CeDsl.Runtime.Tests/Fixtures/released/make_released_fixtures.py"}

    status = 0
    for seed, (name, kind, kwargs, shape) in enumerate(CE_CASES, start=1):
        tensors, metadata = make_ce_case(ce_module, seed, kind, kwargs, shape)
        status |= write(os.path.join(HERE, f"{name}.safetensors"), tensors, {**metadata, **common}, args.check)
    tensors, metadata = make_ce_resnet50(resnet_module)
    os.makedirs(NETWORKS_FIXTURES, exist_ok=True)
    status |= write(os.path.join(NETWORKS_FIXTURES, "ce_resnet50.safetensors"), tensors, {**metadata, **common}, args.check)
    return status


if __name__ == "__main__":
    sys.exit(main())
