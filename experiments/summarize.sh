#!/usr/bin/env bash
# Rebuilds every table and plot of docs/experiments.md from the committed outputs of the full protocol
# (experiments/results/full/: the runs of experiments/full-protocol.sh and the analyses of
# experiments/analyze-full.sh). Runs not there yet show as "pending". Tables: experiments/summarize.py
# (Python 3, standard library); plots: `cedsl plot`, built here once.
#
#   experiments/summarize.sh            rewrite the tables and redraw the plots (docs/experiments/*.png)
#   experiments/summarize.sh --check    change nothing; fail if docs/experiments.md is out of date
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(command -v python3 || command -v /usr/bin/python3)
if [[ " $* " == *" --check "* || " $* " == *" --no-plots "* || -n ${CEDSL:-} ]]; then
    exec "$python" experiments/summarize.py "$@"
fi
dotnet build src/CeDsl.Cli -c Release -v quiet -nologo > /dev/null
CEDSL="dotnet src/CeDsl.Cli/bin/Release/net10.0/cedsl.dll" exec "$python" experiments/summarize.py "$@"
