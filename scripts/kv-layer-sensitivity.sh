#!/usr/bin/env bash
# Per-layer sensitivity of the KV cache: for every layer L, quantizes only layer L's keys (then only
# its values) with a low-bit probe scheme, every other layer f16, and measures the mean KL divergence
# against the f16 run. The ranking tells `--kv-layers` overrides where extra bits pay most.
#
# Usage: scripts/kv-layer-sensitivity.sh [-m MODEL] [-c CTX] [--chunks N] [--key-probe S] [--value-probe S]
#                                        [--extra "ARGS"]
#   Defaults: the default model, -c 512, 10 chunks, keys kivi2pre, values turbo2, extra
#   "--kv-group-size 256 --kv-residual 0". About 2 × layers × 12 s on the default model (2 cores).
# Any perturbation of the cache gives a KLD of ~0.0035 on SmolLM2 (even an f32 cache against the f16
# one: activation quantization turns ulp changes into different roundings), and that floor depends on
# depth (the more layers downstream, the more roundings flip), so the probes use 2 bits, where a
# layer's own cost stands well above it. At 3 bits (kivi3mix / turbo3) every layer measured
# 0.0019–0.0050 and the ranking followed depth (layers 3, 1, 2 first, 27–29 last), not the layers
# the 2-bit probe singles out (keys of 18, 20, 23, 17).
# Prints a markdown table (layer, K KLD, V KLD) and the layers ranked by sensitivity.
set -euo pipefail
cd "$(dirname "$0")/.."
model=smollm2; ctx=512; chunks=10; kprobe=kivi2pre; vprobe=turbo2; extra="--kv-group-size 256 --kv-residual 0"
shared=${GODWIT_SHARED_DIR:-../shared}
[ -d "$shared" ] || shared=/work/shared
text=${GODWIT_TEXT:-$shared/data/wikitext-2-test.txt}
while [ $# -gt 0 ]; do
  case "$1" in
    -m) model=$2; shift 2 ;;
    -c) ctx=$2; shift 2 ;;
    --chunks) chunks=$2; shift 2 ;;
    --key-probe) kprobe=$2; shift 2 ;;
    --value-probe) vprobe=$2; shift 2 ;;
    --extra) extra=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
godwit=${GODWIT_BIN:-.build/release/godwit}
[ -x "$godwit" ] || swift build -c release --product godwit >&2
layers=$("$godwit" inspect "$model" | sed -n 's/^layers: \([0-9]*\).*/\1/p')
[ -n "$layers" ] || { echo "cannot read the layer count of $model" >&2; exit 1; }
base=$(mktemp --suffix=.kld)
trap 'rm -f "$base"' EXIT

kld() { # args... → mean KLD
  # shellcheck disable=SC2086
  "$godwit" perplexity -m "$model" -f "$text" -c "$ctx" --chunks "$chunks" $extra "$@" \
    --kl-divergence-base "$base" --kl-divergence 2>&1 | awk '/Mean +KLD/ {print $3}'
}

echo "base: $godwit perplexity -m $model -c $ctx --chunks $chunks (f16)" >&2
"$godwit" perplexity -m "$model" -f "$text" -c "$ctx" --chunks "$chunks" --kl-divergence-base "$base" > /dev/null 2>&1
rows=()
for ((l = 0; l < layers; l++)); do
  k=$(kld --kv-layers "$l=$kprobe/-")
  v=$(kld --kv-layers "$l=-/$vprobe")
  echo "layer $l: K $k V $v" >&2
  rows+=("$l $k $v")
done

echo "| layer | K KLD ($kprobe) | V KLD ($vprobe) |"
echo "|---:|---:|---:|"
for r in "${rows[@]}"; do set -- $r; echo "| $1 | $2 | $3 |"; done
echo
printf '%s\n' "${rows[@]}" | sort -k2 -gr | awk '{printf "%s%s", (NR > 1 ? "," : "K layers, most sensitive first: "), $1} END {print ""}'
printf '%s\n' "${rows[@]}" | sort -k3 -gr | awk '{printf "%s%s", (NR > 1 ? "," : "V layers, most sensitive first: "), $1} END {print ""}'
