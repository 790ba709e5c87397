#!/usr/bin/env bash
# cedsl analyze on the converged checkpoints of experiments/full-protocol.sh, for committing: for each
# finished run (its metrics.csv in experiments/results/full/<run>/) whose checkpoint is in $OUT
# (runs/full/<run>/checkpoint.safetensors), on all 10,000 test images, into
# experiments/results/full/<run>/analysis/: channels.csv (the paper's |gamma| < 1e-3 and sparsity
# ratio, the slides' ratios), importance.csv, analyze.txt (what cedsl printed) and command.txt.
# The BN and CE runs of the three seeds also get the cumulative ablation curve (ablation.csv: ratios 0
# to 0.9, 3 random orders each, the paper's Fig. 3a/b); the other runs only the statistics.
#
#   experiments/analyze-full.sh [run ...]      default: every finished run not analysed yet
#
# A run already analysed is skipped (delete its analysis/ to redo it). The analysis of a run appears
# only when complete (written to analysis.partial/, then renamed). CEDSL names the cedsl to run
# (default: a copy published from this checkout into artifacts/analysis-cedsl, apart from the copy the
# training workers run); OMP_NUM_THREADS sets libtorch's threads (default 1, beside running workers);
# EXTRA adds options to every cedsl analyze (e.g. EXTRA="--embedded" for a trial on the embedded subset).
set -euo pipefail
cd "$(dirname "$0")/.."

CEDSL=${CEDSL:-"dotnet artifacts/analysis-cedsl/cedsl.dll"}
DATA=${CEDSL_DATA:+--data $CEDSL_DATA}
OUT=${OUT:-runs/full}
RESULTS=${RESULTS:-experiments/results/full}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ABLATION="--ratios 0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 --repeats 3 --ablate first --seed 1"
STATISTICS_ONLY="--ratios 0 --repeats 1"
EXTRA=${EXTRA:-}

publish() {
    [[ $CEDSL != "dotnet artifacts/analysis-cedsl/cedsl.dll" || -f artifacts/analysis-cedsl/cedsl.dll ]] && return 0
    dotnet publish src/CeDsl.Cli -c Release -o artifacts/analysis-cedsl -v quiet -nologo
    git rev-parse --short HEAD > artifacts/analysis-cedsl/COMMIT
}

options_for() { # run name -> cedsl analyze options
    case $1 in
        resnet20-s[0-9]* | ce-resnet20-s[0-9]*) echo "$ABLATION" ;;
        *) echo "$STATISTICS_ONLY" ;;
    esac
}

analyze() { # run name
    local name=$1 result=$RESULTS/$1 checkpoint=$OUT/$1/checkpoint.safetensors
    if [[ ! -f $result/metrics.csv ]]; then echo "$name: not finished (no $result/metrics.csv), skipped"; return 0; fi
    if [[ -f $result/analysis/command.txt ]]; then echo "$name: analysed already ($result/analysis)"; return 0; fi
    if [[ ! -f $checkpoint ]]; then echo "$name: no checkpoint at $checkpoint, skipped" >&2; return 0; fi
    local partial=$result/analysis.partial options
    options="$(options_for "$name")${EXTRA:+ $EXTRA}"
    rm -rf "$partial"; mkdir -p "$partial"
    # shellcheck disable=SC2086
    local args=(analyze --checkpoint "$checkpoint" --out "$partial" $options $DATA)
    echo "$(date -u +%FT%TZ) $name: cedsl ${args[*]}"
    if ! $CEDSL "${args[@]}" > "$partial/analyze.txt" 2>&1; then
        echo "$name: cedsl analyze failed; see $partial/analyze.txt" >&2
        return 1
    fi
    rm -f "$partial"/*.png # the plots of docs/experiments.md are drawn by experiments/summarize.sh from the CSV files
    sed -i '/^wrote /d' "$partial/analyze.txt" # it names analysis.partial/ and the plots just removed
    {
        echo "cedsl analyze --checkpoint runs/full/$name/checkpoint.safetensors --out $RESULTS/$name/analysis $options"
        echo "OMP_NUM_THREADS=$OMP_NUM_THREADS, cedsl built from commit $(cat artifacts/analysis-cedsl/COMMIT 2>/dev/null || echo unknown)"
    } > "$partial/command.txt"
    rm -rf "$result/analysis"
    mv "$partial" "$result/analysis"
    echo "$(date -u +%FT%TZ) $name: $(grep -m1 "the CE paper's criteria" "$result/analysis/analyze.txt" | sed 's/^ *//')"
}

publish
if (( $# > 0 )); then
    runs=("$@")
else
    mapfile -t runs < <(find "$RESULTS" -mindepth 2 -maxdepth 2 -name metrics.csv -printf '%h\n' 2>/dev/null | xargs -r -n1 basename | sort)
fi
(( ${#runs[@]} > 0 )) || { echo "no finished runs in $RESULTS yet"; exit 0; }
status=0
for name in "${runs[@]}"; do
    analyze "$name" || status=1
done
exit $status
