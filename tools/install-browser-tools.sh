#!/usr/bin/env bash
# The npm packages of the browser test (tests/browser: playwright-core, which drives Debian's
# /usr/bin/chromium; no browser is downloaded) into build/browser-tools, or the folder given.
exec bash "$(dirname "$0")/install-npm-packages.sh" tests/browser "${1:-build/browser-tools}"
