#!/usr/bin/env python3
"""Draws the KV-cache quality frontier (bits per value vs ΔPPL) as an SVG, standard library only.

Usage: scripts/kv-frontier-chart.py [docs/kv-frontier-points.json] [docs/kv-frontier.svg]
The points file lists measured configurations: label, godwit perplexity args, bpv, ΔPPL in %.
ΔPPL is drawn on a log scale (values ≤ 0.01 % are clamped to 0.01 %); the targets of the cache
issue (≤ 4.5 bpv: 0.5 %, ≤ 3.5: 2 %, ≤ 2.5: 6 %) are drawn as a dashed staircase.
"""
import json, math, sys

src = sys.argv[1] if len(sys.argv) > 1 else "docs/kv-frontier-points.json"
dst = sys.argv[2] if len(sys.argv) > 2 else "docs/kv-frontier.svg"
data = json.load(open(src, encoding="utf-8"))
W, H, L, R, T, B = 900, 560, 70, 20, 40, 60
xmin, xmax, ymin, ymax = 2.0, 11.0, 0.01, 300.0

def x(bpv): return L + (bpv - xmin) / (xmax - xmin) * (W - L - R)
def y(d): return T + (math.log10(ymax) - math.log10(max(d, ymin))) / (math.log10(ymax) - math.log10(ymin)) * (H - T - B)

out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">{data["model"]}: KV cache bits per value vs ΔPPL (wikitext-2, -c 512, 40 chunks)</text>']
for v in range(2, 12):
    out.append(f'<line x1="{x(v)}" y1="{T}" x2="{x(v)}" y2="{H-B}" stroke="#eee"/><text x="{x(v)}" y="{H-B+15}" text-anchor="middle">{v}</text>')
for d in [0.01, 0.1, 1, 10, 100]:
    out.append(f'<line x1="{L}" y1="{y(d)}" x2="{W-R}" y2="{y(d)}" stroke="#eee"/><text x="{L-5}" y="{y(d)+4}" text-anchor="end">{d:g}%</text>')
out.append(f'<text x="{W/2}" y="{H-15}" text-anchor="middle">bits per value (K and V, every byte held)</text>')
out.append(f'<text x="15" y="{H/2}" text-anchor="middle" transform="rotate(-90 15 {H/2})">ΔPPL vs f16 (log scale)</text>')
# Targets as a staircase.
steps = [(2.0, 6), (2.5, 6), (2.5, 2), (3.5, 2), (3.5, 0.5), (4.5, 0.5)]
out.append('<polyline fill="none" stroke="#c00" stroke-dasharray="5,4" points="' + " ".join(f"{x(a)},{y(b)}" for a, b in steps) + '"/>')
out.append(f'<text x="{x(4.5)+4}" y="{y(0.5)-4}" fill="#c00">targets</text>')
colors = {"q": "#555", "fp8": "#1f77b4", "q8_kv": "#1f77b4", "turbo": "#9467bd", "kivi": "#2ca02c", "nuq": "#ff7f0e"}
for p in data["points"]:
    key = next((k for k in ["fp8", "q8_kv", "turbo", "kivi", "nuq"] if p["label"].startswith(k)), "q")
    cx, cy = x(p["bpv"]), y(p["dppl"])
    out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colors[key]}"/>')
    out.append(f'<text x="{cx+6:.1f}" y="{cy-4:.1f}" fill="{colors[key]}">{p["label"]} ({p["dppl"]:+.2f}%)</text>')
out.append("</svg>")
open(dst, "w", encoding="utf-8").write("\n".join(out) + "\n")
print(f"wrote {dst} ({len(data['points'])} points)")
