#!/usr/bin/env bash
# The folding benchmark (bench/run-network-bench.sh) run N times, each in a process of its own, for the
# headline ratios of docs/benchmarks/folding.md and README: every run's table is kept in
# bench/results/folding/run-K.md (with the command, the commit, the date and the load average), and
# bench/results/folding/summary.md gives, per network and variant, the median of the runs' ratios to
# the folded baseline and their range. Run it on a quiet machine; it replaces earlier results.
#   bench/run-folding-repeats.sh [N (default 3)] [benchmark options (default --batch 32 --size 224 --rounds 9)]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}; shift || true
options=("$@"); (( ${#options[@]} > 0 )) || options=(--batch 32 --size 224 --rounds 9)
(( runs >= 1 )) || { echo "N must be at least 1" >&2; exit 2; }
out=bench/results/folding
mkdir -p "$out" artifacts
rm -f "$out"/run-*.md "$out/summary.md"
for k in $(seq 1 "$runs"); do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    bench/run-network-bench.sh "${options[@]}" > "artifacts/folding-run-$k.log"
    {
        echo "bench/run-network-bench.sh ${options[*]}"
        echo "run $k of $runs, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), load average before $load, $(nproc) cores"
        echo
        cat artifacts/folding.table.md
    } > "$out/run-$k.md"
    echo "run $k of $runs done"
done

# Median and range over the runs of each row's ratio (column 5 of "| network | variant | time | ratio | faults |").
cat "$out"/run-*.md | awk -F'|' -v runs="$runs" '
    /^\| resnet|^\| mobilenet|^\| shufflenet/ {
        key = $2 "|" $3; gsub(/^ +| +$/, "", $5)
        if (!(key in count)) order[++keys] = key
        values[key, ++count[key]] = $5 + 0
    }
    END {
        print "Median over " runs " runs of bench/run-network-bench.sh (bench/results/folding/run-*.md) of the ratio to the folded baseline, and the range."
        print ""
        print "| network | variant | median ratio | range | runs |"
        print "|---|---|---:|---:|---:|"
        for (k = 1; k <= keys; k++) {
            key = order[k]; n = count[key]
            for (i = 1; i <= n; i++) v[i] = values[key, i]
            for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            median = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            split(key, parts, "|")
            printf "|%s|%s| %.3f | %.3f-%.3f | %d |\n", parts[1], parts[2], median, v[1], v[n], n
        }
    }' > "$out/summary.md"
cat "$out/summary.md"
