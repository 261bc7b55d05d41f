"""The hardware's ceiling for bulk embedding on every core (issue 17's >= 1.8x): the installed
encoder alone, loaded as a queue worker's session loads it (the pre-packed model.packed.onnx with
its memory-mapped weights, no graph optimisation at load, one intra-op and one inter-op thread, no
spinning, memory pattern on; --model onnx: the plain export, optimised at load), run by one
process and by N processes at once, each on its own batches. No PostgreSQL, no writes: whatever N
processes lose against N x one here, the queue workers cannot win back.

    .run/venv/bin/python bench/process_scaling.py [--seconds 20] [--batch 4] [--tokens 64] [--procs 2]
    (bench/results/process_scaling.txt; with --model onnx, process_scaling-onnx.txt)

Each process runs batches of --batch texts of --tokens tokens (random word-piece ids, every
position attended: the cost of real text of that length) for --seconds, after two warm-up runs.
The defaults give runs of 256 padded tokens, the most a worker's one-thread run holds
(core::batch::MAX_RUN_TOKENS). Odd rounds run one process first, even rounds N first.
"""
import argparse
import datetime
import multiprocessing as mp
import os
import subprocess
import time

import numpy as np
import onnxruntime as ort

from ort_probe import share_dir


def worker(path, seconds, batch, tokens, start, out):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_mem_pattern = True
    if path.endswith("model.packed.onnx"):  # optimised when it was made (models/materialize.py)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(os.getpid())
    feed = {
        "input_ids": rng.integers(1000, 29000, size=(batch, tokens), dtype=np.int64),
        "attention_mask": np.ones((batch, tokens), dtype=np.int64),
        "token_type_ids": np.zeros((batch, tokens), dtype=np.int64),
    }
    for _ in range(2):
        sess.run(None, feed)
    start.wait()
    t0, runs = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        sess.run(None, feed)
        runs += 1
    out.put(runs * batch / (time.perf_counter() - t0))


def measure(path, procs, a):
    start, out = mp.Barrier(procs), mp.Queue()
    ps = [mp.Process(target=worker, args=(path, a.seconds, a.batch, a.tokens, start, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    rates = [out.get(timeout=a.seconds + 120) for _ in ps]  # a process that died: queue.Empty
    for p in ps:
        p.join()
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", choices=("packed", "onnx"), default="packed")
    a = ap.parse_args()
    name = "model.packed.onnx" if a.model == "packed" else "model.onnx"
    path = os.path.join(share_dir(), "recommender", "models", "encoder", name)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        f"process scaling: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}, commit {commit}, "
        f"{os.cpu_count()} cores, {cpu}",
        f"command: bench/process_scaling.py --seconds {a.seconds:g} --batch {a.batch} --tokens {a.tokens} "
        f"--procs {a.procs} --rounds {a.rounds} --model {a.model}; {path}",
    ]
    print(*lines, sep="\n", flush=True)
    for r in range(a.rounds):
        if r % 2 == 0:
            one = sum(measure(path, 1, a))
            many = measure(path, a.procs, a)
        else:
            many = measure(path, a.procs, a)
            one = sum(measure(path, 1, a))
        line = (f"round {r + 1}: 1 process {one:.1f} texts/s; {a.procs} processes "
                f"{' + '.join(f'{x:.1f}' for x in many)} = {sum(many):.1f} texts/s: {sum(many) / one:.2f}x")
        print(line, flush=True)
        lines.append(line)
    out = "process_scaling.txt" if a.model == "packed" else "process_scaling-onnx.txt"
    with open(os.path.join(root, "bench", "results", out), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
