#!/usr/bin/env bash
# Installs the Debian 12 packages OneStory needs to build and run (with --test: and to run every
# test); only what is missing.
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libhiredis-dev libabsl-dev libre2-dev libssl-dev libgtest-dev libgmock-dev libcpp-httplib-dev
  libjemalloc-dev
  grpc-proto  # the gRPC reflection v1 proto (libgrpc++ 1.51 serves only v1alpha)
  redis-server redis-tools
  python3 python3-grpcio python3-protobuf
)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(
    clang libclang-rt-14-dev  # the libFuzzer targets (tools/fuzz.sh)
    openssl                   # certificates for the TLS tests
    python3-prometheus-client # its parser reads /metrics in the e2e tests
    chromium                  # the agent console's browser test (tests/browser)
  )
  # node and npm for the deploy manifests test (tests/deploy); a Node.js that brings its own npm
  # (not Debian's) is fine, so these go by command, not by package.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
