#!/usr/bin/env bash
# Installs the npm packages of one test folder (its package.json, versions pinned by its
# package-lock.json) into a folder under build/, only when missing or when the lock file changed:
#   tools/install-npm-packages.sh tests/deploy build/deploy-tools
# Needs node and npm (tools/install-deps.sh --test). No install script runs, and nothing else is
# downloaded (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: the browser test drives Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
src="$1"
dir="$2"
if ! command -v npm >/dev/null; then
  echo "npm not found: run bash tools/install-deps.sh --test" >&2
  exit 1
fi
if [[ -d "$dir/node_modules" ]] && cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
  exit 0
fi
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
echo "installing the npm packages of $src into $dir"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
