#!/usr/bin/env bash
# The ONNX benchmark: folded ResNet-50 and CE-ResNet-50 in ONNX Runtime and in TorchSharp, batch 1 and 32
# at 224x224, 2 threads, in rotation (writes artifacts/onnx.table.md for docs/benchmarks/onnx.md).
#   bench/run-onnx-bench.sh [--batches 1,32] [--size 224] [--rounds 5] [--profile]
set -euo pipefail
cd "$(dirname "$0")/.."
# The allocator settings of run-ce-bench.sh: freed activation memory stays in one heap, so the
# numbers measure compute rather than first-touch page faults on 100 MB activations.
export MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
mkdir -p artifacts
dotnet run --project bench/CeDsl.Onnx.Benchmarks -c Release -- --markdown artifacts/onnx.table.md "$@"
