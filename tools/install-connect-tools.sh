#!/usr/bin/env bash
# The npm packages of the Connect client test (tests/connect: @connectrpc/connect-node and the
# protobuf-es code generator) into build/connect-tools, or the folder given.
exec bash "$(dirname "$0")/install-npm-packages.sh" tests/connect "${1:-build/connect-tools}"
