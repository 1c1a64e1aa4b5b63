#!/usr/bin/env bash
# Decode speed at depth 4096 per KV scheme (tg64 after a 4096-token context, 2 threads, 2 repetitions),
# as a markdown table: the "speed at depth" rows of docs/kv-schemes.md. nuq needs the calibration
# file of scripts/calibrate.sh (CAL=path to override). Run from the repository root on an idle machine.
set -uo pipefail
cd "$(dirname "$0")/.."
g=${GODWIT_BIN:-.build/release/godwit}
[ -x "$g" ] || swift build -c release --product godwit >&2
cal=${CAL:-$HOME/.cache/godwit/calibration/smollm2-nuq.gguf}
run() { # label args...
  local label=$1; shift
  local r
  r=$("$g" bench -d 4096 -p 0 -n 64 -r 2 -t 2 -o json "$@" 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print("%.1f ± %.1f" % (r["avg_ts"], r["stddev_ts"]))')
  echo "| $label | \`$*\` | $r |"
}
echo "| scheme | args | tg64 @ d4096 t/s |"
echo "|---|---|---:|"
run f16 -ctk f16 -ctv f16
run q8_0 -ctk q8_0 -ctv q8_0
run q4_0 -ctk q4_0 -ctv q4_0
run fp8_e4m3 -ctk fp8_e4m3 -ctv fp8_e4m3
run fp8_e5m2 -ctk fp8_e5m2 -ctv fp8_e5m2
run q8_kv -ctk q8_kv -ctv q8_kv
run turbo4 -ctk turbo4 -ctv turbo4
run turbo3 -ctk turbo3 -ctv turbo3
run turbo2 -ctk turbo2 -ctv turbo2
run kivi4 -ctk kivi4 -ctv kivi4 --kv-group-size 64 --kv-residual 0
run kivi2 -ctk kivi2 -ctv kivi2 --kv-group-size 64 --kv-residual 0
run kivi4pre/q4_0 -ctk kivi4pre -ctv q4_0 --kv-group-size 256 --kv-residual 0
run nuq4 -ctk nuq4 -ctv nuq4 --kv-calibration "$cal"
run nuq3 -ctk nuq3 -ctv nuq3 --kv-calibration "$cal"
run kivi4mix/q4_0 -ctk kivi4mix -ctv q4_0 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
run kivi3mix/turbo3 -ctk kivi3mix -ctv turbo3 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
run tcq4 -ctk tcq4 -ctv tcq4
run tcq3 -ctk tcq3 -ctv tcq3
run tcq2 -ctk tcq2 -ctv tcq2
run f16/tcq3 -ctk f16 -ctv tcq3
run kivi3tcq/f16 -ctk kivi3tcq -ctv f16 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
run kivi3tcq/tcq3 -ctk kivi3tcq -ctv tcq3 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
run "f16 (again: drift)" -ctk f16 -ctv f16
