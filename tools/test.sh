#!/usr/bin/env bash
# Builds OneStory and runs every test: unit, integration (each binary starts its own
# redis-server on a free port) and end-to-end (the real binaries driven from Python's grpcio).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
ctest --test-dir build --output-on-failure -j2 --timeout 600
