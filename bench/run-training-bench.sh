#!/usr/bin/env bash
# CE's training cost (docs/benchmarks/ce-training.md): each case's BN network and CE network timed side by
# side in one process (each case in a process of its own, so that a crash in one does not lose the others),
# and with --floor what CE must cost there. Prints the tables and writes artifacts/ce-training.table.md.
#   bench/run-training-bench.sh [--cases resnet20:16:train,...] [--runs 5] [--iterations 5] [--threads 2] [--operators] [--floor]
# Default cases: resnet20:16:train resnet20:16:eval resnet20:128:train resnet18:16:train resnet50:16:train. --operators adds CE on
# libtorch's operators only (the trainable CE before the CPU kernels). Needs a quiet machine: every number is a
# wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/.."
# The allocator settings of run-ce-bench.sh: freed activation memory stays in one heap, so the numbers
# measure compute rather than first-touch page faults on large activations.
export MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
cases="resnet20:16:train,resnet20:16:eval,resnet20:128:train,resnet18:16:train,resnet50:16:train"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) cases="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
mkdir -p artifacts
dotnet build bench/CeDsl.Training.Benchmarks -c Release -v quiet -nologo > /dev/null
out=artifacts/ce-training.table.md
: > "$out"
IFS=',' read -ra list <<< "$cases"
for case in "${list[@]}"; do
  part=$(mktemp)
  if dotnet run --no-build --project bench/CeDsl.Training.Benchmarks -c Release -- --cases "$case" --markdown "$part" "${args[@]}"; then
    cat "$part" >> "$out"
  else
    echo "case $case failed (exit code $?)" | tee -a "$out" >&2
  fi
  echo >> "$out"
  rm -f "$part"
done
echo "tables written to $out"
