#!/usr/bin/env bash
# The benchmark, reproducible on any Debian 12 machine: installs what is missing (and gnuplot
# for the chart), builds, then measures raw Redis and OneStory side by side in one run.
#   bash tools/bench.sh            # full: 100k customers x 50 events, 10 s per step (~10 min)
#   bash tools/bench.sh --quick    # a smoke run of every step (~1 min)
# Results: bench-results/{summary.txt,results.json,bench.png}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
if ! command -v gnuplot >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox
fi
bash tools/build.sh
exec /usr/bin/python3 tools/bench.py --build-dir build --out bench-results "$@"
