#!/usr/bin/env bash
# Issue 2's benchmark, both halves in one run on the same machine and thread count:
# the PyTorch reference (Debian's python3-torch), then the TorchSharp BenchmarkDotNet suite.
# Writes the ratio table to docs/benchmarks/ce-layer.md.
#   bench/run-ce-bench.sh [--released PATH/TO/CE_module.py]
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks
mkdir -p "$out" artifacts
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "PyTorch reference needs Debian's python3-torch: apt-get install -y python3-torch" >&2
  exit 1
fi
/usr/bin/python3 bench/pytorch/ce_bench.py --json artifacts/pytorch-ce.json "$@" | tee artifacts/pytorch-ce.md
dotnet run --project bench/CeDsl.Benchmarks -c Release -- \
  --pytorch artifacts/pytorch-ce.json --markdown "$out/ce-layer.table.md" --filter '*ChannelEquilibrium*'
