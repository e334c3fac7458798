#!/usr/bin/env bash
# Builds OneStory and runs every test: unit, integration (each binary starts its own
# redis-server on a free port), end-to-end (the real binaries driven from Python's grpcio), the
# Kubernetes manifests checked offline (tests/deploy), the agent console in headless chromium
# (tests/browser) and a bounded fuzzing run (tools/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh --test
bash tools/install-deploy-tools.sh  # npm packages of the deploy manifests test, into build/
bash tools/install-browser-tools.sh  # playwright-core for the console's browser test, into build/
bash tools/install-connect-tools.sh  # connect-node and protoc-gen-es for the Connect test, into build/
bash tools/build.sh
ctest --test-dir build --output-on-failure -j2 --timeout 600
bash tools/fuzz.sh  # the libFuzzer targets, 60 s in all (a clang build in build-fuzz)
