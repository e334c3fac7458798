#!/usr/bin/env bash
# Installs the npm packages of the deploy test (tests/deploy: kubernetes-models, yaml; versions
# pinned by its package-lock.json) into build/deploy-tools, or the folder given; only when
# missing or when the lock file changed. Needs node and npm (tools/install-deps.sh --test).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build/deploy-tools}"
if ! command -v npm >/dev/null; then
  echo "npm not found: run bash tools/install-deps.sh --test" >&2
  exit 1
fi
if [[ -d "$dir/node_modules" ]] && cmp -s tests/deploy/package-lock.json "$dir/package-lock.json"; then
  exit 0
fi
mkdir -p "$dir"
cp tests/deploy/package.json tests/deploy/package-lock.json "$dir/"
echo "installing the deploy test's npm packages into $dir"
npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
