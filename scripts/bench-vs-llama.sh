#!/usr/bin/env bash
# Godwit vs llama.cpp, side by side on this machine: llama-bench's tests (pp = prompt processing of
# P tokens, tg = generation of N tokens, after a context prefilled to depth D), the two engines
# run interleaved — one repetition of each engine in turn, R rounds — so machine noise hits both.
# Prints a markdown table: mean ± sd t/s of each engine and the ratio Godwit / llama.cpp.
#
# Usage: scripts/bench-vs-llama.sh [-r 5] [-t 2] [-m MODEL] [-p 512] [-n 128] [-o OUT.md] CONFIG...
#   CONFIG = DEPTH:K/V, e.g. 0:f16/f16 4096:f16/f16 4096:q8_0/q8_0 4096:q4_0/q4_0 (default: these four)
# Needs llama.cpp's llama-bench: built by ../shared/tools/llama-cpp-reference.sh (or LLAMA_BENCH=path).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5 threads=2 model="" p=512 n=128 out=""
while getopts "r:t:m:p:n:o:" o; do
  case $o in r) reps=$OPTARG;; t) threads=$OPTARG;; m) model=$OPTARG;; p) p=$OPTARG;; n) n=$OPTARG;; o) out=$OPTARG;;
             *) sed -n 2,10p "$0"; exit 2;; esac
done
shift $((OPTIND - 1))
configs=("$@"); [ ${#configs[@]} -gt 0 ] || configs=(0:f16/f16 4096:f16/f16 4096:q8_0/q8_0 4096:q4_0/q4_0)
model=${model:-$(scripts/fetch-model.sh smollm2)}
shared=${GODWIT_SHARED_DIR:-../shared}
[ -d "$shared" ] || shared=/work/shared
llama=${LLAMA_BENCH:-}
if [ -z "$llama" ]; then
  tool=$shared/tools/llama-cpp-reference.sh
  [ -f "$tool" ] || { echo "bench-vs-llama: set LLAMA_BENCH=/path/to/llama-bench" >&2; exit 1; }
  llama="$(bash "$tool")/llama-bench"
fi
swift build -c release --product godwit >&2
godwit=.build/release/godwit
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for ((rep = 1; rep <= reps; rep++)); do
  for c in "${configs[@]}"; do
    d=${c%%:*} kv=${c#*:} k=${kv%/*} v=${kv#*/}
    echo "round $rep/$reps: depth $d, $k/$v" >&2
    "$godwit" bench -m "$model" -p "$p" -n "$n" -d "$d" -ctk "$k" -ctv "$v" -t "$threads" -r 1 -o json > "$tmp/g-$rep-$d-$k-$v.json"
    "$llama" -m "$model" -p "$p" -n "$n" -d "$d" -ctk "$k" -ctv "$v" -t "$threads" -fa 1 -r 1 -o json > "$tmp/l-$rep-$d-$k-$v.json" 2>/dev/null
  done
done
python3 - "$tmp" "$threads" "$reps" "$model" > "$tmp/table.md" <<'PY'
import json, glob, os, statistics, sys
tmp, threads, reps, model = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs = {}
for f in sorted(glob.glob(os.path.join(tmp, "*.json"))):
    engine = "godwit" if os.path.basename(f).startswith("g-") else "llama"
    for r in json.load(open(f)):
        test = ("pp%d" % r["n_prompt"]) if r["n_prompt"] else ("tg%d" % r["n_gen"])
        key = (r["n_depth"], r["type_k"], r["type_v"], test)
        runs.setdefault(key, {}).setdefault(engine, []).append(r["avg_ts"])
print(f"Model `{os.path.basename(model)}`, {threads} threads, flash attention on, {reps} interleaved rounds (mean ± sd t/s).\n")
print("| test | depth | K/V | Godwit t/s | llama.cpp t/s | ratio |")
print("|---|---:|---|---:|---:|---:|")
for key in sorted(runs, key=lambda k: (k[0], k[1] != "f16", k[1], k[3])):
    d, k, v, test = key
    g, l = runs[key].get("godwit", []), runs[key].get("llama", [])
    fmt = lambda xs: f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.1f}" if xs else "–"
    ratio = f"{statistics.mean(g) / statistics.mean(l):.2f}×" if g and l else "–"
    print(f"| {test} | {d} | {k}/{v} | {fmt(g)} | {fmt(l)} | {ratio} |")
PY
cat "$tmp/table.md"
[ -z "$out" ] || cp "$tmp/table.md" "$out"
