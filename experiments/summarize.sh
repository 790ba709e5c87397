#!/usr/bin/env bash
# Prints the Markdown tables of docs/experiments.md from the runs of experiments/fashion-mnist.sh.
set -euo pipefail
OUT=${OUT:-runs/experiments}

last() { tail -1 "$1"; } # the last epoch's row of a metrics.csv

# Test error mean and s.d. (percent) over the seeds, training images/s, and the per-seed errors.
echo "| model | seeds | test error % (mean ± s.d.) | per seed | train images/s |"
echo "|---|---:|---:|---|---:|"
for model in ${MODELS:-resnet20 se-resnet20 ce-resnet20 bd-resnet20 aii-resnet20 preresnet29 sconv-preresnet29 prune-preresnet29}; do
    files=$(ls "$OUT"/"$model"-s*/metrics.csv 2>/dev/null || true)
    [[ -z $files ]] && continue
    for f in $files; do last "$f"; echo; done | awk -F, -v model="$model" 'NF > 5 {
            e = 100 * (1 - $7); n++; s += e; ss += e * e; list = list (n > 1 ? ", " : "") sprintf("%.2f", e)
        }
        END {
            mean = s / n; sd = n > 1 ? sqrt((ss - n * mean * mean) / (n - 1)) : 0
            printf "| %s | %d | %.2f ± %.2f | %s |", model, n, mean, sd, list
        }'
    cat $files | awk -F, '$1 ~ /^[0-9]+$/ { s += $8; n++ } END { printf " %.0f |\n", s / n }'
done
echo

# Weight decay: test error and the inhibited-channel and sparsity ratios (all probed layers).
echo "| weight decay | BN error % | BN inhibited % | BN sparsity % | CE error % | CE inhibited % | CE sparsity % |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for wd in 0.0001 0.001 0.005 0.01; do
    row="| $wd"
    for model in resnet20 ce-resnet20; do
        run=$model-wd$wd; [[ $wd == 0.0001 ]] && run=$model-s1
        if [[ -f $OUT/$run/metrics.csv && -f $OUT/$run/analysis/channels.csv ]]; then
            error=$(last "$OUT/$run/metrics.csv" | awk -F, '{ printf "%.2f", 100 * (1 - $7) }')
            ratios=$(awk -F, '$2 == "(overall)" { printf "%.1f | %.1f", 100 * $15, 100 * $20 }' "$OUT/$run/analysis/channels.csv")
            row="$row | $error | $ratios"
        else
            row="$row | - | - | -"
        fi
    done
    echo "$row |"
done
echo

# Cumulative random ablation of the first normalization layers: mean test accuracy per ratio.
echo "| ablated ratio | BN accuracy % | CE accuracy % |"
echo "|---:|---:|---:|"
bn=$OUT/resnet20-s1/ablation/ablation.csv; ce=$OUT/ce-resnet20-s1/ablation/ablation.csv
if [[ -f $bn && -f $ce ]]; then
    join -t, <(awk -F, 'NR > 1 { printf "%s,%.1f ± %.1f\n", $7, 100 * $10, 100 * $11 }' "$bn" | sort) \
             <(awk -F, 'NR > 1 { printf "%s,%.1f ± %.1f\n", $7, 100 * $10, 100 * $11 }' "$ce" | sort) \
        | sort -t, -g | awk -F, '{ printf "| %s | %s | %s |\n", $1, $2, $3 }'
fi
echo

# ECDM channel importance: mean Gini and normalized entropy over the BN-ReLU-conv chains.
echo "| model | seed | chains | mean Gini | mean normalized entropy |"
echo "|---|---:|---:|---:|---:|"
for model in resnet20 ce-resnet20; do
    for seed in 1 2 3; do
        file=$OUT/$model-s$seed/importance/importance.csv
        [[ -f $file ]] || continue
        awk -F, -v model="$model" -v seed="$seed" '$2 == "(overall)" { n = 0 } $2 != "(overall)" && NR > 1 { n++ }
            $2 == "(overall)" { printf "| %s | %s | %d | %.3f | %.3f |\n", model, seed, chains, $5, $6 } { chains = n }' "$file"
    done
done
echo

# Selective convolution: what the last line of each selective run reports.
for log in "$OUT"/sconv-preresnet29-*.log "$OUT"/prune-preresnet29-*.log; do
    [[ -f $log ]] && { echo "$(basename "$log" .log): $(grep -E '^done|^selective' "$log" | tr '\n' ' ')"; }
done
