"""Assembles the "Latest `make bench` run" section of BENCHMARKS.md from bench/results/.

  python bench/report.py bench/results BENCHMARKS.md
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys

R, md = sys.argv[1], sys.argv[2]
BEGIN, END = "<!-- make bench: begin -->", "<!-- make bench: end -->"


def read(name):
    p = os.path.join(R, name)
    return open(p).read() if os.path.exists(p) else ""


def sh(*cmd):
    try:
        return subprocess.check_output(cmd, text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        return "?"


cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
out = [BEGIN, "## Latest `make bench` run", "",
       f"- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; commit `{sh('git', 'describe', '--always', '--dirty')}`; command: {os.environ.get('BENCH_COMMAND', '`make bench`')}",
       f"- machine: {os.cpu_count()} cores ({cpu}), {mem} GiB, {platform.platform()}, "
       f"PostgreSQL {sh('/usr/lib/postgresql/15/bin/postgres', '--version').split()[-1]}, pgvector 0.8.0, ONNX Runtime 1.32.0",
       "- cross-encoder in these runs: a deterministic one of ms-marco-MiniLM-L-6-v2's size (6 layers x 384, "
       "models/manifest.json `bench-cross-encoder`; no registry ships the real weights), so it costs what the "
       "real model costs", ""]

peer = json.loads(read("peer.json") or "{}")
if peer:
    out += ["### Extension vs the peer service (same requests, same client, loopback; ms per call)", "",
            "The extension is called over the PostgreSQL protocol, the peer over HTTP (its FastAPI app under "
            "uvicorn, keep-alive), each timed from sending the request to having the parsed result. The last "
            "column is the peer's pipeline called inside the client process (no HTTP, no JSON): the work alone.", "",
            "| function | calls | extension p50 / p95 / p99 | peer service p50 / p95 / p99 | peer ÷ extension (p50) "
            "| peer in-process p50 / p95 / p99 |",
            "|---|---|---|---|---|---|"]
    for f, v in peer.items():
        if isinstance(v, dict) and "extension_ms" in v:
            e, p = v["extension"], v["peer"]
            i = v.get("peer_inprocess")
            inproc = f"{i['p50']:.1f} / {i['p95']:.1f} / {i['p99']:.1f}" if i else "n/a"
            out.append(f"| {f} | {e['calls']} | {e['p50']:.1f} / {e['p95']:.1f} / {e['p99']:.1f} | "
                       f"{p['p50']:.1f} / {p['p95']:.1f} / {p['p99']:.1f} | {p['p50'] / e['p50']:.2f} | {inproc} |")
    b = peer.get("bulk embedding (products/s, 2,000 CJ texts)")
    if b:
        d = b.get("distinct")
        note = (f"; {d:,} distinct: the extension runs each distinct text once, the peer all 2,000; "
                f"per text run, the extension's rate is {b['extension'] * d / 2000:.0f}/s" if d else "")
        out.append(f"| bulk embedding, products/s (2,000 CJ texts{note}; higher is better; vectors not shipped: the extension's embed(text[]) counted in the server, the peer's encoder called in-process) | | "
                   f"{b['extension']:.0f} | {b['peer']:.0f} | extension ÷ peer {b['extension'] / b['peer']:.2f} | |")
    out += ["", f"Peer service process peak RSS: {peer.get('peer_process_max_rss_mib', 0):.0f} MiB. "
            "Histograms: [bench/results/latency.png](bench/results/latency.png)", "",
            "![latency histograms](bench/results/latency.png)", ""]

for title, name in [("Server-side latency (inside one backend, clock_timestamp())", "pipeline.txt"),
                    ("Loading Complete Journey (from the run that loaded the store: a run that finds it loaded keeps this file)", "load.txt"),
                    ("First call and memory", "first_call.txt"),
                    ("Concurrency (pgbench)", "concurrency.txt"),
                    ("Catalogue growth (bench/growth.sh)", "growth.txt"),
                    ("Offline evaluation, default settings (bench/evaluate.sh; items | method | households | HR@10 | Recall@10 | NDCG@10)", "evaluation.txt"),
                    ("Offline evaluation, settings tuned on the validation split", "evaluation-tuned.txt"),
                    ("Tuning on the validation split (bench/tune.sh)", "tuning.txt"),
                    ("MovieLens latest-small, defaults (bench/evaluate_movielens.sh; items | method | users | HR@10 | Recall@10 | NDCG@10)", "evaluation-movielens.txt"),
                    ("MovieLens, homepage settings on its validation split (bench/tune_movielens.sh)", "tuning-movielens.txt")]:
    t = read(name)
    if t:
        lines = [l for l in t.splitlines() if l.strip() and not l.startswith("\x1b")]
        if name == "pipeline.txt":
            lines = lines[next((i for i, l in enumerate(lines) if "function" in l and "p50" in l), 0):]
        if name == "load.txt":
            lines = [l for l in lines if "took" in l or "NOTICE:  recommender: embedded" in l and " in " in l
                     or "texts through the model" in l
                     or re.match(r"^\s*\d", l)]
        out += [f"### {title}", "", "```", *lines[-40:], "```", ""]
out.append(END)

text = open(md).read()
block = "\n".join(out)
if BEGIN in text:
    text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
else:
    first = text.index("\n## ") if "\n## " in text else len(text)
    text = text[:first] + "\n" + block + "\n" + text[first:]
open(md, "w").write(text)
print(f"{md}: latest run written")
