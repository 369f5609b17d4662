#!/bin/bash
# Regenerate the campaign's reports from the stored studies (docs/results/studies/*.db), or,
# with --from-scratch, rerun every study first (about 45 minutes on 2 CPU cores).
# Run from the repository root after `make install` (or `make test`, which installs).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
NAMES="small-tasks gflownet char-lm schedule knobs-digits"
if [ "${1:-}" = "--from-scratch" ]; then
  for n in $NAMES; do
    rm -f "docs/results/studies/$n.db"
    OMP_NUM_THREADS=1 $BIN/vradam-hpo run "docs/results/definitions/$n.yaml" \
      --db "sqlite:///docs/results/studies/$n.db"
  done
fi
for n in $NAMES; do
  baseline=adamw
  [ "$n" = knobs-digits ] && baseline=vradam  # the knobs are compared with default VRAdam
  $BIN/vradam-hpo report "docs/results/definitions/$n.yaml" --baseline "$baseline" \
    --db "sqlite:///docs/results/studies/$n.db" --out "docs/results/reports/$n"
done
