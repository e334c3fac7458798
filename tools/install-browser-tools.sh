#!/usr/bin/env bash
# Installs the npm packages of the browser test (tests/browser: playwright-core, pinned by its
# package-lock.json) into build/browser-tools, or the folder given; only when missing or when the
# lock file changed. No browser is downloaded: the test drives Debian's /usr/bin/chromium
# (tools/install-deps.sh --test installs it). Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build/browser-tools}"
if ! command -v npm >/dev/null; then
  echo "npm not found: run bash tools/install-deps.sh --test" >&2
  exit 1
fi
if [[ -d "$dir/node_modules" ]] && cmp -s tests/browser/package-lock.json "$dir/package-lock.json"; then
  exit 0
fi
mkdir -p "$dir"
cp tests/browser/package.json tests/browser/package-lock.json "$dir/"
echo "installing the browser test's npm packages into $dir"
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing by itself; this keeps it so.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
