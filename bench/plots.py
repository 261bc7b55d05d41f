"""Renders bench/results/peer.json as latency histograms, extension vs peer, one panel per
function: bench/results/latency.png (linked from BENCHMARKS.md)."""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
r = json.load(open(src))
funcs = [k for k, v in r.items() if isinstance(v, dict) and "extension_ms" in v]
cols = 2
rows = math.ceil(len(funcs) / cols)
fig, axes = plt.subplots(rows, cols, figsize=(12, 3.2 * rows), squeeze=False)
for ax, f in zip(axes.flat, funcs):
    e, p = r[f]["extension_ms"], r[f]["peer_ms"]
    hi = max(sorted(e)[int(0.99 * (len(e) - 1))], sorted(p)[int(0.99 * (len(p) - 1))]) * 1.1
    bins = [hi * i / 60 for i in range(61)]
    ax.hist([min(x, hi) for x in e], bins=bins, alpha=0.6, label=f"extension (p50 {r[f]['extension']['p50']:.1f} ms)")
    ax.hist([min(x, hi) for x in p], bins=bins, alpha=0.6, label=f"peer service (p50 {r[f]['peer']['p50']:.1f} ms)")
    ax.set_title(f, fontsize=10)
    ax.set_xlabel("ms per call (client side)")
    ax.legend(fontsize=8)
for ax in list(axes.flat)[len(funcs):]:
    ax.axis("off")
fig.tight_layout()
fig.savefig(dst, dpi=90)
print(dst)
