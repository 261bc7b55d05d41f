"""The hardware's ceiling for bulk embedding on every core (issue 17's >= 1.8x): the installed
encoder alone, configured like a queue worker's session (one intra-op and one inter-op thread, no
spinning), run by one process and then by N processes at once, each on its own batches. No
PostgreSQL, no writes: whatever N processes lose against N x one here, the queue workers cannot
win back.

    .run/venv/bin/python bench/process_scaling.py [--seconds 30] [--batch 32] [--tokens 64] [--procs 2]
    (bench/results/process_scaling.txt)

Each process runs batches of --batch texts of --tokens tokens (random word-piece ids, every
position attended: the cost of real text of that length) for --seconds, after two warm-up runs.
"""
import argparse
import datetime
import multiprocessing as mp
import os
import time

import numpy as np
import onnxruntime as ort

from ort_probe import share_dir


def worker(path, seconds, batch, tokens, start, out):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
    rates = [out.get() for _ in ps]
    for p in ps:
        p.join()
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    path = os.path.join(share_dir(), "recommender", "models", "encoder", "model.onnx")
    lines = [
        f"process scaling: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}, {os.cpu_count()} cores",
        f"command: bench/process_scaling.py --seconds {a.seconds:g} --batch {a.batch} --tokens {a.tokens} "
        f"--procs {a.procs} --rounds {a.rounds}; {path}",
    ]
    print(*lines, sep="\n", flush=True)
    for r in range(a.rounds):
        one = sum(measure(path, 1, a))
        many = measure(path, a.procs, a)
        line = (f"round {r + 1}: 1 process {one:.1f} texts/s; {a.procs} processes "
                f"{' + '.join(f'{x:.1f}' for x in many)} = {sum(many):.1f} texts/s: {sum(many) / one:.2f}x")
        print(line, flush=True)
        lines.append(line)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "process_scaling.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
