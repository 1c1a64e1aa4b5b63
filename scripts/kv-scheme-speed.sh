#!/usr/bin/env bash
# Decode speed at depth 4096 per KV scheme (tg64 after a 4096-token context, 2 threads, 2 repetitions),
# as a markdown table with the ratio to the f16 cache (mean of the f16 runs at the start, middle and end,
# which also show the machine's drift): the "speed at depth" rows of docs/kv-schemes.md, then the three
# configurations of docs/kv-frontier.json. Needs the calibration file of scripts/calibrate.sh (CAL=path to
# override; the frontier rows name it `smollm2`). Run from the repository root on an idle machine
# (about 12 minutes); progress goes to stderr. ONLY=regex runs the f16 rows and the rows whose label matches.
set -uo pipefail
cd "$(dirname "$0")/.."
g=${GODWIT_BIN:-.build/release/godwit}
[ -x "$g" ] || swift build -c release --product godwit >&2
cal=${CAL:-$HOME/.cache/godwit/calibration/smollm2-nuq.gguf}
labels=() args=() speeds=() f16=()
run() { # label args...
  local label=$1; shift
  local is_f16=0
  [[ $label == f16 || $label == "f16 ("* ]] && is_f16=1
  [[ $is_f16 == 1 || -z ${ONLY:-} || $label =~ $ONLY ]] || return 0
  echo "speed: $label" >&2
  local r
  r=$("$g" bench -d 4096 -p 0 -n 64 -r 2 -t 2 -o json "$@" 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print("%.1f %.1f" % (r["avg_ts"], r["stddev_ts"]))')
  [ -n "$r" ] || r="0 0"
  labels+=("$label"); args+=("$*"); speeds+=("$r")
  [[ $is_f16 == 1 ]] && f16+=("${r%% *}")
}
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
run "f16 (middle)" -ctk f16 -ctv f16
run kivi4mix/q4_0 -ctk kivi4mix -ctv q4_0 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
run kivi3mix/turbo3 -ctk kivi3mix -ctv turbo3 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
run tcq4 -ctk tcq4 -ctv tcq4
run tcq3 -ctk tcq3 -ctv tcq3
run tcq2 -ctk tcq2 -ctv tcq2
run f16/tcq3 -ctk f16 -ctv tcq3
run kivi3tcq/f16 -ctk kivi3tcq -ctv f16 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
run kivi3tcq/tcq3 -ctk kivi3tcq -ctv tcq3 --kv-group-size 256 --kv-residual 0 --kv-calibration "$cal"
for class in 4.5 3.5 2.5; do
  mapfile -t frontier < <(python3 -c 'import json,sys; [print(a) for a in json.load(open("docs/kv-frontier.json"))[sys.argv[1]]]' "$class")
  run "frontier ≤ $class" "${frontier[@]}"
done
run "f16 (end)" -ctk f16 -ctv f16
mean=$(printf '%s\n' "${f16[@]}" | awk '{s += $1} END {printf "%.2f", s / NR}')
echo "| scheme | args | tg64 @ d4096 t/s | × f16 |"
echo "|---|---|---:|---:|"
for i in "${!labels[@]}"; do
  read -r avg sd <<< "${speeds[$i]}"
  ratio=$(awk -v a="$avg" -v m="$mean" 'BEGIN {printf "%.2f", a / m}')
  echo "| ${labels[$i]} | \`${args[$i]}\` | $avg ± $sd | $ratio |"
done
echo
echo "f16 mean: $mean t/s (runs: ${f16[*]})"
