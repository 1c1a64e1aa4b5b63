#!/usr/bin/env bash
# The main job on a fresh machine: build Godwit (release), fetch the default model once, generate.
# Usage: scripts/demo.sh ["prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-"The capital of France is"}
swift build -c release --product godwit >&2
scripts/fetch-model.sh smollm2 >/dev/null
.build/release/godwit generate -p "$prompt" -n 64 --temp 0
