#!/bin/bash
# Regenerate the campaign's reports from the stored studies (docs/results/studies/*.db), or,
# with --from-scratch, rerun every study first (about an hour on 2 CPU cores).
# Run from the repository root after `make install` (or `make test`, which installs).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
NAMES="small-tasks gflownet char-lm schedule knobs-digits knobs-char-lm"
if [ "${1:-}" = "--from-scratch" ]; then
  for n in $NAMES; do
    rm -f "docs/results/studies/$n.db"
    OMP_NUM_THREADS=1 $BIN/vradam-hpo run "docs/results/definitions/$n.yaml" \
      --db "sqlite:///docs/results/studies/$n.db"
  done
fi
for n in $NAMES; do
  baseline=adamw
  case "$n" in knobs-*) baseline=vradam ;; esac  # the knobs are compared with default VRAdam
  $BIN/vradam-hpo report "docs/results/definitions/$n.yaml" --baseline "$baseline" \
    --db "sqlite:///docs/results/studies/$n.db" --out "docs/results/reports/$n"
done
