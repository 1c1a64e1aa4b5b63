#!/usr/bin/env bash
# Recreates the nuq3/nuq4 calibration file used for the measurements (KVQuant-style schemes):
# SmolLM2 (or $1 = model path/name), 16384 tokens of wikitext-2-test taken after skipping the first
# 100,000 tokens, so calibration never sees the perplexity evaluation tokens (the first 40×512).
#
# Usage: scripts/calibrate.sh [MODEL] [OUTPUT]
#   MODEL   default smollm2
#   OUTPUT  default ${XDG_CACHE_HOME:-$HOME/.cache}/godwit/calibration/<model>-nuq.gguf
# Env: GODWIT_SHARED_DIR (default /work/shared) for data/wikitext-2-test.txt; THREADS (default 1).
# Prints the path of the calibration file on stdout.
set -euo pipefail

model=${1:-smollm2}
name=$(basename "$model" .gguf | tr '[:upper:]' '[:lower:]')
case "$name" in smollm2*) name=smollm2 ;; gemma*) name=gemma3 ;; esac
out=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/godwit/calibration/$name-nuq.gguf}
text=${GODWIT_SHARED_DIR:-/work/shared}/data/wikitext-2-test.txt
root=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$(dirname "$out")"
cd "$root"
swift build -c release --product godwit >&2
"$root/.build/release/godwit" calibrate -m "$model" -f "$text" --skip 100000 --tokens 16384 -c 512 \
    -t "${THREADS:-1}" -o "$out" >&2
echo "$out"
