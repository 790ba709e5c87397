#!/usr/bin/env bash
# What keeping freed memory (NativeHeap.KeepFreedMemory, which every cedsl command calls first) is worth:
# `cedsl bench` with cedsl's settings and with glibc's defaults, alternately, ROUNDS times (default 3), each
# with the minor page faults of its whole process. PreResNet-29 at batch 128 has 32 MiB activations, past
# glibc's largest mmap threshold; ResNet-20's largest are 8 MiB. A glibc.malloc tunable in GLIBC_TUNABLES makes
# cedsl leave glibc's heap alone, and glibc.malloc.check=0 is glibc's default: that variant runs on the defaults.
#   bench/run-heap-bench.sh > bench/results/heap/<date>.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CEDSL=${CEDSL:-"dotnet src/CeDsl.Cli/bin/Release/net10.0/cedsl.dll"}
ARGS=(bench --model preresnet29 resnet20 --batch 128 --warmup 2 --iterations 5)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
unset MALLOC_ARENA_MAX MALLOC_MMAP_MAX_ MALLOC_MMAP_THRESHOLD_ MALLOC_TRIM_THRESHOLD_ MALLOC_TOP_PAD_ GLIBC_TUNABLES

echo "<!-- $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), OMP_NUM_THREADS=$OMP_NUM_THREADS: bench/run-heap-bench.sh (ROUNDS=$ROUNDS) -->"
echo "cedsl ${ARGS[*]}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo '```'
for round in $(seq "$ROUNDS"); do
    for variant in cedsl glibc; do
        tunables=""; [[ $variant == glibc ]] && tunables=glibc.malloc.check=0
        # The page faults of the child alone: getrusage(RUSAGE_CHILDREN) of a process that waited for nothing else.
        GLIBC_TUNABLES=$tunables /usr/bin/python3 -c '
import resource, subprocess, sys, os
if not os.environ["GLIBC_TUNABLES"]: del os.environ["GLIBC_TUNABLES"]
run = subprocess.run(sys.argv[2:], capture_output=True, text=True, check=True)
faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
rows = [line for line in run.stdout.splitlines() if line.split(" ")[0] in ("preresnet29", "resnet20")]
print(f"round {sys.argv[1]}, minor page faults {faults:,}")
print("\n".join(rows))' "$round $variant" $CEDSL "${ARGS[@]}"
    done
done
echo '```'
