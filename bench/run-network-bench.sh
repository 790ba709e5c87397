#!/usr/bin/env bash
# The folding benchmark: ResNet-18/50 baseline, SE, CE, unfolded and folded, evaluation forward on the
# CPU, as ratios to the folded baseline (writes artifacts/folding.table.md for docs/benchmarks/folding.md).
#   bench/run-network-bench.sh [--batch 32] [--size 224] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
# The allocator settings of run-ce-bench.sh: freed activation memory stays in one heap, so the
# numbers measure compute rather than first-touch page faults on 100 MB activations.
export MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
mkdir -p artifacts
dotnet run --project bench/CeDsl.Network.Benchmarks -c Release -- --markdown artifacts/folding.table.md "$@"
