"""Ways to a faster cross-encoder, measured outside the extension (issue 17): the real-size bench
cross-encoder (6 layers x 384, models/manifest.json "bench-cross-encoder") in fp32, quantised to
int8 by ONNX Runtime's dynamic quantisation (s8 per channel; u8), and with each pair's tokens
capped (the longer of query and document cut first). For 100 Complete Journey households it
scores what a homepage's stage 3 scores: the household's rerank query
(user_profiles.rerank_query) against the documents of its 20 best candidates (homepage(user, 20)
without rerank), as one padded run of 20 pairs like the extension, on one thread. Reports ms per call and the ranking agreement with fp32 on full pairs: NDCG@10 of
each variant's order of the 20 documents, graded by their fp32 order (the issue's bar for int8:
>= 0.98). The bench model's weights are deterministic, not trained: its scores carry no meaning,
so agreement here says how much a variant moves scores relative to their spread, not what it does
to ms-marco-MiniLM-L-6-v2's rankings. Not part of the product: the extension runs whatever ONNX
file the cross-encoder directory holds.

    bash bench/pipeline_bench.sh        (materialises the bench cross-encoder once)
    .run/venv/bin/python bench/ce_quantization.py [--db recommender_cj] [--users 100]
Writes bench/results/ce_quantization.txt.
"""
import os, tempfile, time

import numpy as np
from tokenizers import Tokenizer

from ort_probe import cli, connect, int8_exports, report, session, share_dir, write_results

args = cli("--users", 100)
M = f"{share_dir()}/recommender/bench-models/cross-encoder/"
if not os.path.exists(M + "model.onnx"):
    raise SystemExit(f"no bench cross-encoder in {M}: run bash bench/pipeline_bench.sh first")

with connect(args.db) as c:
    c.execute("SET recommender.as_of = '2018-01-01'")
    c.execute("SET recommender.enable_rerank = off")
    users = [r[0] for r in c.execute(
        "SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id) LIMIT %s",
        (args.users,))]
    calls = []
    for u in users:
        docs = [r[0] for r in c.execute(
            "SELECT recommender._rerank_doc(p.name, p.category, p.description)"
            "  FROM recommender.homepage(%s, 20) h JOIN recommender.products p USING (product_id) ORDER BY h.position",
            (u,))]
        q = c.execute("SELECT rerank_query FROM recommender.user_profiles WHERE user_id = %s", (u,)).fetchone()[0]
        calls.append((q, docs))


def tokenizer(cap):
    t = Tokenizer.from_file(M + "tokenizer.json")
    t.no_padding()
    t.enable_truncation(cap or 256, strategy="longest_first")
    return t


def batch(tok, q, docs):
    enc = tok.encode_batch([(q, d) for d in docs])
    L = max(len(e.ids) for e in enc)
    ids = np.zeros((len(enc), L), np.int64)
    mask, types = np.zeros_like(ids), np.zeros_like(ids)
    for r, e in enumerate(enc):
        ids[r, :len(e.ids)], mask[r, :len(e.ids)], types[r, :len(e.ids)] = e.ids, 1, e.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, [len(e.ids) for e in enc]


def ndcg10(ref, got):
    """NDCG@10 of the order `got` gives, graded by the order `ref` gives (best = 20, next 19, ...)."""
    n = len(ref)
    rel = np.empty(n)
    rel[np.argsort(-ref, kind="stable")] = np.arange(n, 0, -1)
    dcg = lambda order: sum((2 ** (rel[j] / n * 4) - 1) / np.log2(i + 2) for i, j in enumerate(order[:10]))
    return dcg(np.argsort(-got, kind="stable")) / dcg(np.argsort(-ref, kind="stable"))


tmp = tempfile.mkdtemp()
models = {"fp32": M + "model.onnx", **int8_exports(M + "model.onnx", tmp)}
sessions = {k: session(v) for k, v in models.items()}
full = tokenizer(None)
ref = [sessions["fp32"].run(None, batch(full, q, d)[0])[0].reshape(-1) for q, d in calls]
lens = [n for q, d in calls for n in batch(full, q, d)[1]]
qlens = [len(full.encode(q).ids) for q, _ in calls]
lines = [f"tokens per pair: mean {np.mean(lens):.1f}, max {max(lens)}; of which the query (with [CLS] and [SEP]): mean {np.mean(qlens):.1f}"]
print(lines[0], flush=True)
for cap in [None, 64, 48]:
    tok = tokenizer(cap)
    for name, s in sessions.items():
        if cap is not None and "u8" in name:
            continue
        feeds = [batch(tok, q, d)[0] for q, d in calls]
        s.run(None, feeds[0])
        ms, agree = [], []
        for f, r in zip(feeds, ref):
            t0 = time.perf_counter()
            out = s.run(None, f)[0].reshape(-1)
            ms.append((time.perf_counter() - t0) * 1000)
            agree.append(ndcg10(r, out))
        agree = np.array(agree)
        report(lines, f"{name}, {'full pairs' if cap is None else f'pairs capped at {cap} tokens (the longer side cut first)'}: "
                f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms per call of 20 pairs; "
                f"NDCG@10 against fp32 order {agree.mean():.4f} (s.e. {agree.std(ddof=1) / np.sqrt(len(agree)):.4f}, min {agree.min():.3f})")
write_results("ce_quantization", f"{len(calls)} households of {args.db}, one thread", args, lines)
