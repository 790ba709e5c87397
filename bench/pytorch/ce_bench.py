"""PyTorch eager timings of BN alone and BN followed by the reference CE / BD / AII modules.

The PyTorch half of the CeDsl benchmark (the TorchSharp half is the BenchmarkDotNet suite):
same shapes (ResNet-50: N = 32; C = 256 at 56x56, C = 1024 at 14x14), same thread count,
float32, CPU. The CE modules are tests/CeDsl.Runtime.Tests/Fixtures/reference/ce_reference.py,
the plain reference written from docs/semantics/channel-equilibrium.md (not optimised on purpose).

    /usr/bin/python3 bench/pytorch/ce_bench.py --json bench/pytorch/results.json

Modes: "train" = forward + backward in training mode (the input requires grad, a fixed random
upstream gradient; gradients are reset to None at the start of each call);
"eval" = forward in evaluation mode under torch.no_grad() (after one untimed training forward
so that the running statistics exist). Each number is the median of --runs timed calls after
--warmup untimed ones.

--released PATH additionally times the authors' released CE module (not part of this
repository) as "BN+CE (released)" for comparison.
"""
import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "CeDsl.Runtime.Tests", "Fixtures", "reference"))
from ce_reference import AdaptiveInstanceInverse, BatchDecorrelation, ChannelEquilibrium  # noqa: E402

SHAPES = [(32, 256, 56, 56), (32, 1024, 14, 14)]
VARIANTS = {
    "BN": lambda c: nn.BatchNorm2d(c),
    "BN+CE": lambda c: nn.Sequential(nn.BatchNorm2d(c), ChannelEquilibrium(c)),
    "BN+BD": lambda c: nn.Sequential(nn.BatchNorm2d(c), BatchDecorrelation(c)),
    "BN+AII": lambda c: nn.Sequential(nn.BatchNorm2d(c), AdaptiveInstanceInverse(c)),
}


def released_variant(path):
    spec = importlib.util.spec_from_file_location("released_ce_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def build(c):
        with contextlib.redirect_stdout(io.StringIO()):  # its constructor prints the group size
            ce = module.CE(c, num_channels=16)
        ce.running_wm = ce.running_wm.clone()  # registered expanded (stride 0): in-place updates fail on CPU
        return nn.Sequential(nn.BatchNorm2d(c), ce)

    return build


def time_calls(call, warmup, runs):
    """Wall-clock ms per call, and process CPU ms per call (less sensitive to other processes)."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return wall, cpu


def bench(build, shape, mode, warmup, runs):
    torch.manual_seed(0)
    model = build(shape[1])
    x = torch.randn(shape)
    if mode == "train":
        model.train()
        x.requires_grad_(True)
        upstream = torch.randn(shape)

        def call():
            x.grad = None
            model.zero_grad(set_to_none=True)
            model(x).backward(upstream)
    else:
        model.train()
        with torch.no_grad():
            model(x)  # running statistics (the AII running_scale must be non-zero)
        model.eval()

        def call():
            with torch.no_grad():
                model(x)
    return time_calls(call, warmup, runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--variants", default="BN,BN+CE,BN+BD,BN+AII")
    parser.add_argument("--released", help="path to the authors' CE_module.py (optional)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    if args.released:
        variants["BN+CE (released)"] = released_variant(args.released)

    load_before = os.getloadavg()
    results = []
    for shape in SHAPES:
        for mode in ("train", "eval"):
            for name, build in variants.items():
                times, cpu_times = bench(build, shape, mode, args.warmup, args.runs)
                row = dict(n=shape[0], c=shape[1], h=shape[2], w=shape[3], mode=mode, variant=name,
                           median_ms=statistics.median(times), min_ms=min(times), runs_ms=times,
                           median_cpu_ms=statistics.median(cpu_times))
                results.append(row)
                print(f"  {name:18} {mode:5} C={shape[1]} {shape[2]}x{shape[3]}: {row['median_ms']:9.1f} ms "
                      f"(min {row['min_ms']:.1f}, cpu {row['median_cpu_ms']:.1f})", file=sys.stderr)

    report = dict(
        framework="PyTorch eager", torch=torch.__version__, threads=torch.get_num_threads(),
        dtype="float32", device="cpu", warmup=args.warmup, runs=args.runs, statistic="median",
        machine=dict(processor=platform.processor() or platform.machine(), cpus=os.cpu_count(), python=platform.python_version()),
        # glibc malloc settings: they decide whether activation-sized buffers are page-faulted afresh on every call.
        allocator_env={k: v for k, v in os.environ.items() if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"},
        # 1/5/15-minute load averages: other processes on a shared 2-core machine inflate every number.
        load_average_before=load_before, load_average_after=os.getloadavg(),
        results=results,
    )
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(markdown(results, list(variants)))
    print(f"\nload average (1 min) before {load_before[0]:.2f}, after {report['load_average_after'][0]:.2f}")


def markdown(results, variant_names):
    def median(shape, mode, name):
        return next(r["median_ms"] for r in results
                    if (r["n"], r["c"], r["h"], r["w"]) == shape and r["mode"] == mode and r["variant"] == name)

    others = [v for v in variant_names if v != "BN"]
    lines = ["| shape | mode | BN ms | " + " | ".join(f"{v} ms | ratio" for v in others) + " |",
             "|---|---|---|" + "---|---|" * len(others)]
    for shape in SHAPES:
        for mode, label in (("train", "train fwd+bwd"), ("eval", "eval fwd")):
            bn = median(shape, mode, "BN")
            cells = [f"{median(shape, mode, v):.1f} | x{median(shape, mode, v) / bn:.1f}" for v in others]
            lines.append(f"| N={shape[0]}, C={shape[1]}, {shape[2]}x{shape[3]} | {label} | {bn:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
