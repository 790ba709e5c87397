#!/usr/bin/env bash
# The full Fashion-MNIST protocol of docs/experiments.md: all 60,000 training and 10,000 test images
# (Debian's dataset-fashion-mnist, or --data DIR through CEDSL_DATA), 15 epochs, batch 128, SGD with
# momentum 0.9, cosine learning rate from 0.1, weight decay 1e-4, label smoothing 0.1, 2-pixel crops
# and flips (the defaults of cedsl train).
#
#   experiments/full-protocol.sh list                 the runs, in order, and which are done
#   experiments/full-protocol.sh worker K N           takes jobs K, K+N, K+2N, ... of the list (start N workers)
#
# Every run can be interrupted (Ctrl+C, SIGTERM, the end of a sitting): the next call resumes it from its
# checkpoint in $OUT. Checkpoints stay in $OUT (not in git); each finished run's command, metrics.csv,
# log and final line go to experiments/results/full/<run>/, which is committed. CEDSL names the
# cedsl to run (default: a published copy, so rebuilding the repository does not touch running jobs);
# OMP_NUM_THREADS sets libtorch's threads per worker (default 1: two workers fill two cores).
set -euo pipefail
cd "$(dirname "$0")/.."

CEDSL=${CEDSL:-"dotnet artifacts/experiments-cedsl/cedsl.dll"}
DATA=${CEDSL_DATA:+--data $CEDSL_DATA}
OUT=${OUT:-runs/full}
RESULTS=experiments/results/full
EPOCHS=15
RECIPE="--epochs $EPOCHS --batch 128"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# name model seed [options...], in the order they are worth having.
RUNS=(
    "resnet20-s1 resnet20 1"
    "ce-resnet20-s1 ce-resnet20 1"
    "se-resnet20-s1 se-resnet20 1"
    "resnet20-s2 resnet20 2"
    "ce-resnet20-s2 ce-resnet20 2"
    "se-resnet20-s2 se-resnet20 2"
    "resnet20-s3 resnet20 3"
    "ce-resnet20-s3 ce-resnet20 3"
    "se-resnet20-s3 se-resnet20 3"
    "bd-resnet20-s1 bd-resnet20 1"
    "aii-resnet20-s1 aii-resnet20 1"
    "resnet20-wd0.001 resnet20 1 --weight-decay 0.001"
    "ce-resnet20-wd0.001 ce-resnet20 1 --weight-decay 0.001"
    "resnet20-wd0.005 resnet20 1 --weight-decay 0.005"
    "ce-resnet20-wd0.005 ce-resnet20 1 --weight-decay 0.005"
    "preresnet29-s1 preresnet29 1"
    "sconv-preresnet29-s1 sconv-preresnet29 1"
)

# Finished runs (names from RUNS) whose checkpoints an earlier machine lost before their analysis (experiments/analyze-full.sh
# needs them): trained again from scratch into $OUT only. The committed results stay; retrain.txt beside them
# says whether the new run's metrics (all but the timing columns) equal them.
RETRAIN=(resnet20-s1 ce-resnet20-s1)

# The jobs in the order the workers take them: the retrains come before the PreResNet-29 runs, because the claims
# on ablation, sparsity and weight decay wait for the seed-1 analyses, and only one claim waits for PreResNet-29.
JOBS=()
for entry in "${RUNS[@]}"; do
    [[ ${entry%% *} == preresnet29-s1 ]] && for name in "${RETRAIN[@]}"; do JOBS+=("again $name"); done
    JOBS+=("run ${entry%% *}")
done

done_run() { [[ -f $RESULTS/$1/metrics.csv ]]; }
retrained() { [[ -d $RESULTS/$1/analysis || -f $RESULTS/$1/retrain.txt ]]; }
spec_of() { local entry; for entry in "${RUNS[@]}"; do [[ ${entry%% *} == "$1" ]] && { echo "$entry"; return 0; }; done; return 1; }
built_from() { cat "${CEDSL_COMMIT_FILE:-artifacts/experiments-cedsl/COMMIT}" 2>/dev/null || echo unknown; }

fit() { # label name model seed [options...]: cedsl train into $OUT/<name>, resuming its checkpoint
    local label=$1 name=$2 model=$3 seed=$4; shift 4
    local dir=$OUT/$name args=(train --model "$model" --seed "$seed" $RECIPE $DATA --out "$OUT/$name" "$@")
    mkdir -p "$dir"
    if [[ -f $dir/checkpoint.safetensors ]]; then
        args+=(--resume "$dir/checkpoint.safetensors")
    fi
    echo "$(date -u +%FT%TZ) $label: cedsl ${args[*]}" | tee -a "$dir/train.log"
    $CEDSL "${args[@]}" >> "$dir/train.log" 2>&1 || { echo "$label failed or was interrupted (exit $?); see $dir/train.log" >&2; return 1; }
}

train() { # name model seed [options...]
    local name=$1 model=$2 seed=$3; shift 3
    done_run "$name" && return 0
    fit "$name" "$name" "$model" "$seed" "$@" || return 1
    local dir=$OUT/$name
    mkdir -p "$RESULTS/$name"
    {
        echo "cedsl train --model $model --seed $seed $RECIPE $*"
        echo "OMP_NUM_THREADS=$OMP_NUM_THREADS, cedsl built from commit $(built_from); every sitting's command line is in train.log"
    } > "$RESULTS/$name/command.txt"
    cp "$dir/metrics.csv" "$RESULTS/$name/metrics.csv"
    cp "$dir/train.log" "$RESULTS/$name/train.log"
    tail -1 "$dir/train.log" > "$RESULTS/$name/summary.txt"
    echo "$(date -u +%FT%TZ) $name: $(cat "$RESULTS/$name/summary.txt")"
}

retrain() { # name model seed [options...]
    local name=$1 model=$2 seed=$3; shift 3
    local dir=$OUT/$name result=$RESULTS/$name
    retrained "$name" && return 0
    fit "$name (again)" "$name" "$model" "$seed" "$@" || return 1
    {
        echo "trained again: cedsl train --model $model --seed $seed $RECIPE $* (cedsl built from commit $(built_from))"
        if cmp -s <(cut -d, -f1-7 "$dir/metrics.csv") <(cut -d, -f1-7 "$result/metrics.csv"); then
            echo "metrics.csv without its timing columns: identical to the committed run's"
        else
            echo "metrics.csv without its timing columns differs from the committed run's; the new final line:"
            tail -1 "$dir/train.log"
        fi
    } > "$result/retrain.txt"
    echo "$(date -u +%FT%TZ) $name (again): $(sed -n 2p "$result/retrain.txt")"
}

publish() {
    [[ -n ${CEDSL_PUBLISHED:-} || $CEDSL != "dotnet artifacts/experiments-cedsl/cedsl.dll" ]] && return 0
    [[ -f artifacts/experiments-cedsl/cedsl.dll ]] && return 0
    dotnet publish src/CeDsl.Cli -c Release -o artifacts/experiments-cedsl -v quiet -nologo
    git rev-parse --short HEAD > artifacts/experiments-cedsl/COMMIT
}

job_state() { # kind name
    if [[ $1 == run ]]; then done_run "$2" && { echo done; return; }; else retrained "$2" && { echo done; return; }; fi
    [[ -f $OUT/$2/checkpoint.safetensors ]] && echo started || echo -
}

case ${1:-list} in
    list)
        for i in "${!JOBS[@]}"; do
            read -r kind name <<< "${JOBS[$i]}"
            label=$name; [[ $kind == again ]] && label="$name (again)"
            printf '%2d %-24s %s\n' "$i" "$label" "$(job_state "$kind" "$name")"
        done ;;
    worker)
        k=${2:?worker index}; n=${3:?worker count}
        publish
        for i in "${!JOBS[@]}"; do
            (( i % n == k )) || continue
            read -r kind name <<< "${JOBS[$i]}"
            # shellcheck disable=SC2046
            if [[ $kind == run ]]; then train $(spec_of "$name"); else retrain $(spec_of "$name"); fi
        done ;;
    *) echo "usage: $0 list | worker K N" >&2; exit 2 ;;
esac
