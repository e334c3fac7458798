#!/usr/bin/env bash
# The npm packages of the Node.js client test (tests/connect: @connectrpc/connect-node with the
# protobuf-es code generator, @grpc/grpc-js with @grpc/proto-loader) into build/connect-tools, or
# the folder given.
exec bash "$(dirname "$0")/install-npm-packages.sh" tests/connect "${1:-build/connect-tools}"
