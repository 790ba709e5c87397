#!/usr/bin/env bash
# The README's first command (cedsl train with its defaults) on the embedded subset, as it runs on a
# machine without Debian's dataset-fashion-mnist, with its whole output, the start and end times and the
# load average kept in experiments/results/readme-embedded/ (docs/cli.md cites it).
#   experiments/readme-embedded.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RESULTS=${RESULTS:-experiments/results/readme-embedded}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$RESULTS"
args=(train --embedded --out "$OUT/ce-resnet20")
{
    echo "dotnet run --project src/CeDsl.Cli -c Release -- ${args[*]/$OUT/<scratch>}"
    echo "cedsl built from commit $(git rev-parse --short HEAD); OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}; $(nproc) cores"
} > "$RESULTS/command.txt.tmp"
dotnet build src/CeDsl.Cli -c Release -v quiet -nologo > /dev/null
{
    echo "start $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    start=$(date +%s.%N)
    dotnet src/CeDsl.Cli/bin/Release/net10.0/cedsl.dll "${args[@]}" 2>&1 | sed "s|$OUT|<scratch>|g"
    end=$(date +%s.%N)
    echo "end $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), wall $(awk "BEGIN { printf \"%.1f\", $end - $start }") s (the cedsl process, after the build)"
} > "$RESULTS/train.log.tmp"
cp "$OUT/ce-resnet20/metrics.csv" "$RESULTS/metrics.csv"
mv "$RESULTS/train.log.tmp" "$RESULTS/train.log"
mv "$RESULTS/command.txt.tmp" "$RESULTS/command.txt"
tail -2 "$RESULTS/train.log"
