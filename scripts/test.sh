#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the real binary on temp archives, real FUSE mounts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo test --all-targets "$@"
