#!/usr/bin/env python3
"""Re-measures every point of docs/kv-frontier-points.json with the current build and rewrites its
bpv and ΔPPL (against an f16/f16 run of the same build), then the chart can be redrawn with
scripts/kv-frontier-chart.py. Each point: godwit perplexity -f TEXT -c 512 --chunks 40 ARGS.
Usage: python3 scripts/kv-frontier-points.py [--chunks N] [--only LABEL_SUBSTRING]
The nuq and kivi{b}mix points need the calibration file of scripts/calibrate.sh (`--kv-calibration smollm2`)."""
import json, os, re, subprocess, sys, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
path = os.path.join(root, "docs", "kv-frontier-points.json")
godwit = os.environ.get("GODWIT_BIN", os.path.join(root, ".build", "release", "godwit"))
shared = os.environ.get("GODWIT_SHARED_DIR", os.path.join(root, "..", "shared"))
text = os.path.join(shared, "data", "wikitext-2-test.txt")
chunks = "40"
only = None
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "--chunks": chunks = args.pop(0)
    elif a == "--only": only = args.pop(0)
    else: sys.exit(__doc__)

def measure(extra):
    cmd = [godwit, "perplexity", "-f", text, "-c", "512", "--chunks", chunks] + [os.path.expanduser(x) for x in extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    ppl = float(re.search(r"Final estimate: PPL = ([0-9.]+)", out.stdout + out.stderr).group(1))
    bpv = float(re.search(r"KV cache bpv: ([0-9.]+)", out.stdout + out.stderr).group(1))
    return ppl, bpv

data = json.load(open(path))
base, _ = measure(["-ctk", "f16", "-ctv", "f16"])
print(f"f16/f16 PPL {base:.4f}", flush=True)
for p in data["points"]:
    if only and only not in p["label"]:
        continue
    t = time.time()
    ppl, bpv = measure(p["args"])
    p["bpv"] = round(bpv, 4)
    p["dppl"] = round((ppl / base - 1) * 100, 2)
    p["ppl"] = round(ppl, 4)
    print(f"{p['label']}: bpv {bpv:.4f} PPL {ppl:.4f} ΔPPL {p['dppl']:+.2f} % ({time.time() - t:.0f} s)", flush=True)
data["command"] = f"godwit perplexity -f ../shared/data/wikitext-2-test.txt -c 512 --chunks {chunks} ARGS"
data["baseline"] = f"f16/f16 PPL {base:.4f} of the same build (scripts/kv-frontier-points.py re-measures every point)"
# One line per point, as the file is kept by hand.
head = {k: v for k, v in data.items() if k != "points"}
lines = ["{"] + [f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
lines.append('  "points": [')
lines.append(",\n".join("    " + json.dumps(p, ensure_ascii=False) for p in data["points"]))
lines += ["  ]", "}"]
open(path, "w").write("\n".join(lines) + "\n")
