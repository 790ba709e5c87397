"""Side-by-side check of ce_reference.py against the authors' released CE module.

The released file is NOT part of this repository. Get it yourself (public repository
Tangshitao/CENet, devkit/ops/CE_module.py), put it outside the repository and pass its path:

    /usr/bin/python3 validate_against_released.py /tmp/cenet_check/CE_module.py

Runs both in float64 on the same random inputs and state: 3 training steps (forward, input
gradient, parameter gradients, running statistics after each step), then an evaluation
forward with gradients. Prints the max abs difference per quantity and exits 1 if any
exceeds 1e-12.

Two properties of the released code are worked around without editing it:
- `torch.eye(d)` in its forward has the default dtype, so float64 runs need
  torch.set_default_dtype(torch.float64) during the forward;
- `running_wm` is registered as an expanded (stride-0) tensor, which in-place updates
  reject on CPU; `.double()` replaces it with a dense copy.
"""
import contextlib
import importlib.util
import io
import sys

import torch

from ce_reference import AdaptiveInstanceInverse, BatchDecorrelation, ChannelEquilibrium

TOLERANCE = 1e-12


def load_released(path):
    spec = importlib.util.spec_from_file_location("released_ce_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quiet(factory, *args, **kwargs):
    """The released CE constructor prints its group size."""
    with contextlib.redirect_stdout(io.StringIO()):
        return factory(*args, **kwargs)


def randomise_parameters(module, generator):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("x_weight"):
                p.fill_(0.8)
            elif name.endswith("fc.1.weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def batch(shape, generator, mixing):
    n, c, h, w = shape
    z = torch.randn(shape, generator=generator, dtype=torch.float64)
    x = torch.einsum("dc,nchw->ndhw", mixing, z)
    return x + 0.5 * torch.randn((1, c, 1, 1), generator=generator, dtype=torch.float64)


class Report:
    """Max abs difference per case and quantity (the 3 training steps pooled, eval apart)."""

    COLUMNS = ("train out", "train dX", "train dParams", "running stats", "eval out", "eval dX", "eval dParams")

    def __init__(self):
        self.cases = {}

    def compare(self, case, column, ours, theirs):
        diff = (ours - theirs).abs().max().item()
        row = self.cases.setdefault(case, {})
        row[column] = max(row.get(column, 0.0), diff)

    @property
    def worst(self):
        return max(d for row in self.cases.values() for d in row.values())

    def print_markdown(self):
        print("| case | " + " | ".join(self.COLUMNS) + " |")
        print("|---" * (len(self.COLUMNS) + 1) + "|")
        for case, row in self.cases.items():
            cells = [f"{row[c]:.1e}" if c in row else "-" for c in self.COLUMNS]
            print(f"| {case} | " + " | ".join(cells) + " |")
        print(f"\nmax abs difference: {self.worst:.3e} (tolerance {TOLERANCE:g})")


def run_pair(label, ours, theirs, shape, seed, report):
    """ours / theirs: modules in float64 with identical state. Compares 3 training steps and eval."""
    generator = torch.Generator().manual_seed(seed)
    c = shape[1]
    mixing = torch.eye(c, dtype=torch.float64) + 0.4 * torch.randn((c, c), generator=generator, dtype=torch.float64) / c ** 0.5
    torch.set_default_dtype(torch.float64)  # see the module docstring
    ours.train()
    theirs.train()
    for step in range(1, 5):
        if step == 4:
            ours.eval()
            theirs.eval()
        x = batch(shape, generator, mixing)
        g = torch.randn(shape, generator=generator, dtype=torch.float64)
        outputs, grads_x, param_grads = [], [], []
        for module in (ours, theirs):
            module.zero_grad(set_to_none=True)
            xi = x.clone().requires_grad_(True)
            out = module(xi)
            (out * g).sum().backward()
            outputs.append(out.detach())
            grads_x.append(xi.grad)
            param_grads.append({n: p.grad for n, p in module.named_parameters()})
        phase = "train" if step < 4 else "eval"
        report.compare(label, f"{phase} out", *outputs)
        report.compare(label, f"{phase} dX", *grads_x)
        for name in param_grads[0]:
            report.compare(label, f"{phase} dParams", param_grads[0][name], param_grads[1][name])
        theirs_buffers = dict(theirs.named_buffers())
        for name, buf in ours.named_buffers():
            report.compare(label, "running stats", buf, theirs_buffers[name])
    torch.set_default_dtype(torch.float32)


def main():
    released = load_released(sys.argv[1])
    report = Report()
    cases = [
        # label, channels, group, pool, shape
        ("CE C=32 d=16", 32, 16, False, (4, 32, 6, 6)),
        ("CE C=24 d=16->8", 24, 16, False, (4, 24, 6, 6)),
        ("CE C=32 d=16 pool", 32, 16, True, (2, 32, 8, 8)),
        ("CE C=64 d=64 (stem)", 64, 64, False, (2, 64, 6, 6)),
        ("CE C=116 d=16->4", 116, 16, False, (2, 116, 5, 5)),
    ]
    generator = torch.Generator().manual_seed(1234)
    for i, (label, c, group, pool, shape) in enumerate(cases):
        ours = ChannelEquilibrium(c, group_size=group, pool=pool).double()
        randomise_parameters(ours, generator)
        theirs = quiet(released.CE, c, pooling=pool, num_channels=group).double()
        theirs.load_state_dict(ours.state_dict(), strict=True)  # also proves the state-dict names match
        assert theirs.num_channels == ours.group_size and theirs.num_groups == ours.groups, label
        run_pair(label, ours, theirs, shape, seed=100 + i, report=report)

    # BD-only: the released code has no BD-only module; its CE with sigmoid(x_weight) == 1.0
    # exactly (x_weight = 40 in float64) is BD alone.
    ours = BatchDecorrelation(24, group_size=16).double()
    theirs = quiet(released.CE, 24, num_channels=16).double()
    randomise_parameters(theirs, generator)
    with torch.no_grad():
        theirs.x_weight.fill_(40.0)
    assert torch.sigmoid(theirs.x_weight).item() == 1.0
    run_pair("BD C=24", ours, theirs, (4, 24, 6, 6), seed=200, report=report)

    ours = AdaptiveInstanceInverse(32).double()
    randomise_parameters(ours, generator)
    theirs = released.AdaptiveReweight(32).double()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    run_pair("AII C=32", ours, theirs, (4, 32, 6, 6), seed=300, report=report)

    report.print_markdown()
    return 0 if report.worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
