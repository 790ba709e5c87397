#!/usr/bin/env bash
# Reproduces the tables of docs/experiments.md on Fashion-MNIST (Debian's dataset-fashion-mnist
# files, or --data DIR through CEDSL_DATA). Each part can run alone:
#   experiments/fashion-mnist.sh variants|weight-decay|ablation|importance|selective|pruning|all
# Results go to runs/experiments/; experiments/summarize.sh prints the tables.
# The protocol is reduced to fit a 2-core CPU machine (see docs/experiments.md): 3,000 training
# images, 2,000 test images, 4 epochs, batch 64.
set -euo pipefail
cd "$(dirname "$0")/.."

CEDSL=${CEDSL:-"dotnet run --project src/CeDsl.Cli -c Release --"}
DATA=${CEDSL_DATA:+--data $CEDSL_DATA}
OUT=${OUT:-runs/experiments}
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-1}
RECIPE="--epochs 4 --batch 64 --limit-train 3000 --limit-test 2000"

train() { # name model seed [options...]
    local name=$1 model=$2 seed=$3; shift 3
    if [[ -f $OUT/$name/metrics.csv && $(wc -l < "$OUT/$name/metrics.csv") -gt 4 ]]; then return; fi
    $CEDSL train --model "$model" --seed "$seed" $RECIPE $DATA --out "$OUT/$name" --force "$@" > "$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log"; exit 1; }
    tail -1 "$OUT/$name.log"
}

analyze() { # name output-directory [options...]
    local name=$1 dir=$2; shift 2
    if [[ -f $OUT/$name/$dir/channels.csv ]]; then return; fi
    $CEDSL analyze --checkpoint "$OUT/$name/checkpoint.safetensors" --out "$OUT/$name/$dir" $DATA --limit-test 1000 "$@" > "$OUT/$name/$dir.log" 2>&1 \
        || { cat "$OUT/$name/$dir.log"; exit 1; }
}

variants() {
    for seed in 1 2 3; do
        for model in resnet20 ce-resnet20 se-resnet20 bd-resnet20 aii-resnet20; do
            train "$model-s$seed" "$model" "$seed"
        done
    done
}

weight_decay() {
    for wd in 0.001 0.005 0.01; do
        for model in resnet20 ce-resnet20; do
            train "$model-wd$wd" "$model" 1 --weight-decay "$wd"
        done
    done
    for model in resnet20 ce-resnet20; do
        train "$model-s1" "$model" 1
        for run in "$model-s1" "$model-wd0.001" "$model-wd0.005" "$model-wd0.01"; do
            analyze "$run" analysis --ratios 0 --repeats 1
        done
    done
}

ablation() {
    for model in resnet20 ce-resnet20; do
        train "$model-s1" "$model" 1
        analyze "$model-s1" ablation --ratios 0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 --repeats 2 --ablate first
    done
}

importance() {
    # ECDM channel importance (importance.csv of cedsl analyze) of the BN and CE runs.
    for seed in 1 2 3; do
        for model in resnet20 ce-resnet20; do
            analyze "$model-s$seed" importance --ratios 0 --repeats 1
        done
    done
}

selective() {
    for seed in 1 2 3; do
        train "preresnet29-s$seed" preresnet29 "$seed"
        train "sconv-preresnet29-s$seed" sconv-preresnet29 "$seed"
        if [[ $seed == 1 ]]; then train "prune-preresnet29-s1" prune-preresnet29 1; fi
    done
}

pruning() {
    # Looser dealloc thresholds than the reference's 0.001: pruning only (K = 0), and with re-allocation.
    for gamma in 0.02 0.1; do
        train "prune-preresnet29-g$gamma-s1" prune-preresnet29 1 --select-gamma "$gamma"
    done
    # Re-allocation needs released channels: the selective network at the threshold that releases some.
    train "sconv-preresnet29-g0.1-s1" sconv-preresnet29 1 --select-gamma 0.1
}

mkdir -p "$OUT"
case ${1:-all} in
    variants) variants ;;
    weight-decay) weight_decay ;;
    ablation) ablation ;;
    importance) importance ;;
    selective) selective ;;
    pruning) pruning ;;
    all) variants; weight_decay; ablation; importance; selective; pruning ;;
    *) echo "usage: $0 variants|weight-decay|ablation|importance|selective|pruning|all" >&2; exit 2 ;;
esac
