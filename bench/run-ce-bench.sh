#!/usr/bin/env bash
# The CE layer benchmark, both halves in one run on the same machine and thread count:
# the PyTorch reference (Debian's python3-torch), then the TorchSharp BenchmarkDotNet suite.
# Prints the ratio table (and writes artifacts/ce-layer.table.md) for docs/benchmarks/ce-layer.md.
#   bench/run-ce-bench.sh [--released PATH/TO/CE_module.py]
set -euo pipefail
cd "$(dirname "$0")/.."
# Same glibc allocator behaviour for both halves: keep freed activation memory in one heap
# instead of returning it to the kernel, so the numbers measure compute rather than first-touch
# page faults on 100 MB activations (which otherwise dominate BN itself, in PyTorch as in
# TorchSharp). One arena, because BenchmarkDotNet runs benchmarks on a non-main thread, whose
# glibc arena ignores these settings.
export MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
out=docs/benchmarks
mkdir -p "$out" artifacts
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "PyTorch reference needs Debian's python3-torch: apt-get install -y python3-torch" >&2
  exit 1
fi
/usr/bin/python3 bench/pytorch/ce_bench.py --json artifacts/pytorch-ce.json "$@" | tee artifacts/pytorch-ce.md
dotnet run --project bench/CeDsl.Benchmarks -c Release -- \
  --pytorch artifacts/pytorch-ce.json --markdown artifacts/ce-layer.table.md --filter '*ChannelEquilibrium*'
