#!/usr/bin/env bash
# Measures what each KV cache format costs: perplexity, ΔPPL against the f16 cache, KL divergence
# and top-1 agreement against the f16 run's logits, and the cache's bits per value.
#
# Usage: scripts/kv-quality-table.sh [-m MODEL] [-c CTX] [--chunks N] [-o OUT.json] [--extra "ARGS"] PAIR...
#   PAIR is K/V (e.g. q4_0/q4_0, f16/q8_0) or a label=ARGS entry (e.g. "kivi=-ctk kivi4 -ctv kivi4").
#   Defaults: the default model, -c 512, 40 chunks, ../shared/data/wikitext-2-test.txt.
# The f16/f16 run comes first and saves the base logits (llama.cpp's --kl-divergence-base format)
# to a temporary file (~1 GB for 40 chunks of SmolLM2), which every other run compares against.
# Prints a markdown table and writes the numbers as JSON (-o).
set -euo pipefail
cd "$(dirname "$0")/.."
model=smollm2; ctx=512; chunks=40; out=""; extra=""
shared=${GODWIT_SHARED_DIR:-../shared}
[ -d "$shared" ] || shared=/work/shared
text=${GODWIT_TEXT:-$shared/data/wikitext-2-test.txt}
pairs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -m) model=$2; shift 2 ;;
    -c) ctx=$2; shift 2 ;;
    --chunks) chunks=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -f) text=$2; shift 2 ;;
    --extra) extra=$2; shift 2 ;;
    *) pairs+=("$1"); shift ;;
  esac
done
godwit=${GODWIT_BIN:-.build/release/godwit}
[ -x "$godwit" ] || swift build -c release --product godwit >&2
base=$(mktemp --suffix=.kld)
logs=$(mktemp -d)
trap 'rm -f "$base"; rm -rf "$logs"' EXIT

run() { # label args...
  local label=${1//\//_}; shift
  echo "== $label: $godwit perplexity -m $model -f $text -c $ctx --chunks $chunks $extra $*" >&2
  # shellcheck disable=SC2086
  "$godwit" perplexity -m "$model" -f "$text" -c "$ctx" --chunks "$chunks" $extra "$@" > "$logs/$label.out" 2> "$logs/$label.err" \
    || { cat "$logs/$label.err" >&2; return 1; }
  tail -n 3 "$logs/$label.err" >&2
}

run "f16/f16" -ctk f16 -ctv f16 --kl-divergence-base "$base"
labels=("f16/f16")
for p in "${pairs[@]}"; do
  if [[ "$p" == *=* ]]; then
    label=${p%%=*}; args=${p#*=}
    # shellcheck disable=SC2086
    run "$label" $args --kl-divergence-base "$base" --kl-divergence
  else
    k=${p%/*}; v=${p#*/}
    run "$p" -ctk "$k" -ctv "$v" --kl-divergence-base "$base" --kl-divergence
  fi
  labels+=("$p")
done

python3 - "$logs" "$out" "$model" "$ctx" "$chunks" "${labels[@]}" <<'PY'
import json, re, sys
logs, out, model, ctx, chunks, labels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
def grab(pattern, text, cast=float):
    m = re.search(pattern, text)
    return cast(m.group(1)) if m else None
rows = []
for label in labels:
    name = label.split("=")[0]
    t = open(f"{logs}/{name.replace('/', '_')}.out").read()
    rows.append({
        "config": name,
        "ppl": grab(r"Final estimate: PPL = ([0-9.]+)", t),
        "ppl_stderr": grab(r"Final estimate: PPL = [0-9.]+ \+/- ([0-9.]+)", t),
        "bpv": grab(r"KV cache bpv: ([0-9.]+)", t),
        "kld": grab(r"Mean    KLD:\s+([0-9.]+)", t),
        "top1": grab(r"Same top p:\s+([0-9.]+)", t),
    })
base = rows[0]["ppl"]
print(f"| config | bpv | PPL | ΔPPL | mean KLD | top-1 agreement |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    r["delta_ppl_pct"] = (r["ppl"] / base - 1) * 100
    kld = "–" if r["kld"] is None else f"{r['kld']:.5f}"
    top = "–" if r["top1"] is None else f"{r['top1']:.2f} %"
    print(f"| {r['config']} | {r['bpv']:.3f} | {r['ppl']:.4f} ± {r['ppl_stderr']:.4f} | {r['delta_ppl_pct']:+.2f} % | {kld} | {top} |")
if out:
    json.dump({"model": model, "ctx": int(ctx), "chunks": int(chunks), "results": rows}, open(out, "w"), indent=1)
PY
