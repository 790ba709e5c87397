#!/usr/bin/env bash
# Pruning with selective convolutions on a reduced protocol (the full protocol of
# experiments/full-protocol.sh has no pruning runs): the first 3,000 training and 2,000 test images of
# Fashion-MNIST (Debian's dataset-fashion-mnist, or --data DIR through CEDSL_DATA), 4 epochs, batch 64,
# seed 1. prune-preresnet29 (K = 0 everywhere: released channels are never re-used) at the released
# dealloc threshold 0.001 and at the looser 0.02 and 0.1, and sconv-preresnet29 (with re-allocation)
# at 0.1. Each pruning-only run is folded into the physically smaller network (cedsl fold, which checks
# it against the unfolded one), summarized (cedsl summary), and the folded networks at 0.001 and 0.1
# are timed alternately (cedsl bench).
#
#   experiments/pruning.sh            trains what is missing, then folds, summarizes and times
#
# For a trial on less data: RECIPE replaces the training options, FOLD_OPTIONS and BENCH_OPTIONS are
# added to cedsl fold and cedsl bench (e.g. FOLD_OPTIONS="--embedded --limit-test 100").
#
# Checkpoints stay in $OUT (runs/pruning, not in git); each finished run's command, metrics.csv, log
# and the outputs of fold, summary and bench go to experiments/results/pruning/, which is committed and
# read by experiments/summarize.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

CEDSL=${CEDSL:-"dotnet artifacts/analysis-cedsl/cedsl.dll"}
DATA=${CEDSL_DATA:+--data $CEDSL_DATA}
OUT=${OUT:-runs/pruning}
RESULTS=${RESULTS:-experiments/results/pruning}
RECIPE=${RECIPE:-"--epochs 4 --batch 64 --limit-train 3000 --limit-test 2000"}
FOLD_OPTIONS=${FOLD_OPTIONS:-}
BENCH_OPTIONS=${BENCH_OPTIONS:-"--batch 128"}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# name model [options...]
RUNS=(
    "prune-preresnet29-g0.001 prune-preresnet29"
    "prune-preresnet29-g0.02 prune-preresnet29 --select-gamma 0.02"
    "prune-preresnet29-g0.1 prune-preresnet29 --select-gamma 0.1"
    "sconv-preresnet29-g0.1 sconv-preresnet29 --select-gamma 0.1"
)

publish() {
    [[ $CEDSL != "dotnet artifacts/analysis-cedsl/cedsl.dll" || -f artifacts/analysis-cedsl/cedsl.dll ]] && return 0
    dotnet publish src/CeDsl.Cli -c Release -o artifacts/analysis-cedsl -v quiet -nologo
    git rev-parse --short HEAD > artifacts/analysis-cedsl/COMMIT
}

commit_of() { cat artifacts/analysis-cedsl/COMMIT 2>/dev/null || echo unknown; }

train() { # name model [options...]
    local name=$1 model=$2; shift 2
    [[ -f $RESULTS/$name/metrics.csv ]] && return 0
    local dir=$OUT/$name args=(train --model "$model" --seed 1 $RECIPE $DATA --out "$OUT/$name" "$@")
    mkdir -p "$dir"
    [[ -f $dir/checkpoint.safetensors ]] && args+=(--resume "$dir/checkpoint.safetensors")
    echo "$(date -u +%FT%TZ) $name: cedsl ${args[*]}" | tee -a "$dir/train.log"
    $CEDSL "${args[@]}" >> "$dir/train.log" 2>&1 || { echo "$name failed or was interrupted (exit $?); see $dir/train.log" >&2; return 1; }
    mkdir -p "$RESULTS/$name"
    {
        echo "cedsl train --model $model --seed 1 $RECIPE $*"
        echo "OMP_NUM_THREADS=$OMP_NUM_THREADS, cedsl built from commit $(commit_of); every sitting's command line is in train.log"
    } > "$RESULTS/$name/command.txt"
    cp "$dir/metrics.csv" "$dir/train.log" "$RESULTS/$name/"
}

fold() { # name: the smaller network of a pruning-only run, checked on all test images, and its summary
    local name=$1 dir=$OUT/$1 result=$RESULTS/$1
    [[ -f $result/summary-folded.txt ]] && return 0
    {
        echo "cedsl fold --checkpoint $OUT/$name/checkpoint.safetensors --out $OUT/$name/folded.safetensors $FOLD_OPTIONS"
        $CEDSL fold --checkpoint "$dir/checkpoint.safetensors" --out "$dir/folded.safetensors" $DATA $FOLD_OPTIONS 2>&1
    } > "$result/fold.txt" \
        || { cat "$result/fold.txt" >&2; return 1; }
    {
        echo "cedsl summary --checkpoint $OUT/$name/folded.safetensors"
        $CEDSL summary --checkpoint "$dir/folded.safetensors" 2>&1
        echo "file: $(stat -c %s "$dir/folded.safetensors") bytes"
    } > "$result/summary-folded.tmp" && mv "$result/summary-folded.tmp" "$result/summary-folded.txt"
}

bench() { # the folded networks at 0.001 and 0.1 timed alternately, three times each, in one process
    local result=$RESULTS/bench.txt a=$OUT/prune-preresnet29-g0.001/folded.safetensors b=$OUT/prune-preresnet29-g0.1/folded.safetensors
    [[ -f $result ]] && return 0
    local args=(bench --checkpoint "$b" "$a" "$b" "$a" "$b" "$a" $BENCH_OPTIONS)
    {
        echo "OMP_NUM_THREADS=2 cedsl ${args[*]}   (cedsl built from commit $(commit_of), load average $(cut -d' ' -f1-3 /proc/loadavg))"
        OMP_NUM_THREADS=2 $CEDSL "${args[@]}" 2>&1
    } > "$result.tmp" && mv "$result.tmp" "$result"
}

publish
for run in "${RUNS[@]}"; do
    # shellcheck disable=SC2086
    train $run
done
for name in prune-preresnet29-g0.001 prune-preresnet29-g0.02 prune-preresnet29-g0.1; do
    fold "$name"
done
bench
echo "done: $RESULTS (experiments/summarize.sh puts it into docs/experiments.md)"
