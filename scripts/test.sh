#!/usr/bin/env bash
# The test command: fetches the real models once (integration tests need them), then runs every
# test in release mode (model-level tests are far too slow in debug builds).
# Extra arguments go to `swift test` (e.g. --filter GodwitKernelsTests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-model.sh all >/dev/null
swift test -c release "$@"
