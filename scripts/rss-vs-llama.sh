#!/usr/bin/env bash
# Peak memory (max resident set size from /usr/bin/time -v) of a long-prompt generation: Godwit's
# `generate` vs llama.cpp's `llama-completion`, same model, context, prompt, cache type, threads.
# The prompt is the start of wikitext-2 cut to about TOKENS tokens (default 8060, so at least 8000) of the model.
#
# Usage: scripts/rss-vs-llama.sh [-c 8192] [-k 8000] [-n 64] [-t 2] [-m MODEL] [CACHE_TYPE...]   (default: f16 q8_0 q4_0)
# Needs llama-completion from ../shared/tools/llama-cpp-reference.sh (or LLAMA_COMPLETION=path) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
ctx=8192 tokens=8060 n=64 threads=2 model=""
while getopts "c:k:n:t:m:" o; do
  case $o in c) ctx=$OPTARG;; k) tokens=$OPTARG;; n) n=$OPTARG;; t) threads=$OPTARG;; m) model=$OPTARG;; *) sed -n 2,8p "$0"; exit 2;; esac
done
shift $((OPTIND - 1))
types=("$@"); [ ${#types[@]} -gt 0 ] || types=(f16 q8_0 q4_0)
model=${model:-$(scripts/fetch-model.sh smollm2)}
shared=${GODWIT_SHARED_DIR:-../shared}
[ -d "$shared" ] || shared=/work/shared
completion=${LLAMA_COMPLETION:-}
if [ -z "$completion" ]; then completion="$(bash "$shared/tools/llama-cpp-reference.sh")/llama-completion"; fi
[ -x /usr/bin/time ] || { echo "rss-vs-llama: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
swift build -c release --product godwit >&2
godwit=.build/release/godwit
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Cut the text so that it tokenizes to about $tokens tokens.
python3 - "$tokens" "$tmp/prompt.txt" "$godwit" "$model" "$shared" <<'PY'
import json, subprocess, sys
want, out, godwit, model, shared = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
text = open(shared + "/data/wikitext-2-test.txt", encoding="utf-8").read()
lo, hi = 1000, 200000
while hi - lo > 50:
    mid = (lo + hi) // 2
    ids = json.loads(subprocess.run([godwit, "tokenize", "-m", model, "-p", text[:mid], "--ids"], capture_output=True, text=True, check=True).stdout)
    lo, hi = (mid, hi) if len(ids) <= want else (lo, mid)
open(out, "w", encoding="utf-8").write(text[:lo])
PY
count=$("$godwit" tokenize -m "$model" -f "$tmp/prompt.txt" --ids 2>/dev/null | python3 -c "import json,sys; print(len(json.load(sys.stdin)))" || echo "?")
echo "Prompt: $count tokens (wikitext-2 start), -c $ctx, -n $n, -t $threads, model $(basename "$model")."
echo
echo "| cache K/V | Godwit peak RSS (MiB) | llama.cpp peak RSS (MiB) | ratio |"
echo "|---|---:|---:|---:|"
rss() { /usr/bin/time -v "$@" > /dev/null 2> "$tmp/time.txt" || { tail -5 "$tmp/time.txt" >&2; return 1; }
        awk '/Maximum resident set size/ {printf "%.1f", $6 / 1024}' "$tmp/time.txt"; }
for t in "${types[@]}"; do
  g=$(rss "$godwit" generate -m "$model" -f "$tmp/prompt.txt" -c "$ctx" -n "$n" -t "$threads" --temp 0 -ctk "$t" -ctv "$t")
  l=$(rss "$completion" -m "$model" -f "$tmp/prompt.txt" -c "$ctx" -n "$n" -t "$threads" --temp 0 -fa on -ctk "$t" -ctv "$t" -no-cnv --no-warmup)
  echo "| $t/$t | $g | $l | $(python3 -c "print(f'{$g/$l:.2f}×')") |"
done
