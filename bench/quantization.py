"""Ways to a faster encoder, measured outside the extension. Quantises the installed fp32 encoder
with ONNX Runtime's dynamic quantisation (two variants) and lays out the fp32 weights three ways
(unpacked; pre-packed for the GEMM kernels on the heap, ONNX Runtime's default; pre-packed and
saved to an external data file that is memory-mapped at load). Then measures, in this Python
process (ONNX Runtime 1.32, the same build the extension loads), throughput on real product texts
with 1 and 2 intra-op threads and the cosine to the fp32 reference vectors (tests/fixtures) and to
fp32 on those texts. Not part of the product: the extension ships fp32 only.

    .run/venv/bin/python bench/quantization.py [--db recommender_cj] [--n 2000]
Writes bench/results/quantization.txt.
"""
import json, os, tempfile, time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ort_probe import ROOT, cli, connect, int8_exports, report, session, share_dir, write_results

args = cli("--n", 2000)
M = f"{share_dir()}/recommender/models/encoder/"
ref = json.load(open(f"{ROOT}/tests/fixtures/minilm-reference.json"))
tok = Tokenizer.from_file(M + "tokenizer.json")
tok.no_padding()
tok.enable_truncation(256)
with connect(args.db) as c:
    texts = [r[0] for r in c.execute(
        "SELECT recommender.product_text(name, description, category, price::float8) FROM recommender.products "
        "ORDER BY product_id LIMIT %s", (args.n,))]
tmp = tempfile.mkdtemp()
variants = {"fp32, pre-packed on the heap (the default)": (M + "model.onnx", {}),
            "fp32, no pre-packing": (M + "model.onnx", {"session.disable_prepacking": "1"})}
o = ort.SessionOptions()
o.optimized_model_filepath = os.path.join(tmp, "prepacked.onnx")
for k, v in {"session.optimized_model_external_initializers_file_name": "prepacked.data",
             "session.optimized_model_external_initializers_min_size_in_bytes": "1024",
             "session.save_external_prepacked_constant_initializers": "1"}.items():
    o.add_session_config_entry(k, v)
ort.InferenceSession(M + "model.onnx", o, providers=["CPUExecutionProvider"])
variants["fp32, pre-packed in a mapped data file"] = (os.path.join(tmp, "prepacked.onnx"), {})
for name, out in int8_exports(M + "model.onnx", tmp).items():
    variants[name] = (out, {})
def sess(variant, threads):
    p, extra = variant
    return session(p, threads, extra)
def embed(s, ts, bs=32):
    enc=tok.encode_batch(ts)
    order=sorted(range(len(ts)), key=lambda i: len(enc[i].ids))
    out=[None]*len(ts)
    for k in range(0,len(order),bs):
        idx=order[k:k+bs]; L=max(len(enc[i].ids) for i in idx)
        ids=np.zeros((len(idx),L),np.int64); mask=np.zeros_like(ids)
        for r,i in enumerate(idx):
            e=enc[i].ids; ids[r,:len(e)]=e; mask[r,:len(e)]=1
        feeds={'input_ids':ids,'attention_mask':mask}
        if 'token_type_ids' in [x.name for x in s.get_inputs()]: feeds['token_type_ids']=np.zeros_like(ids)
        h=s.run(None,feeds)[0]
        v=(h*mask[...,None]).sum(1)/mask.sum(1,keepdims=True)
        v/=np.linalg.norm(v,axis=1,keepdims=True)
        for r,i in enumerate(idx): out[i]=v[r]
    return np.array(out)
R = np.array(ref['embeddings'], dtype=np.float32)
fp = None
lines = []
for name,p in variants.items():
    s=sess(p,1)
    e=embed(s, ref['sentences'])
    cos=(e*R).sum(1)
    embed(s, texts[:200])
    t=time.time(); E=embed(s, texts); dt=time.time()-t
    if fp is None: fp=E
    c2=(E*fp).sum(1)
    s2=sess(p,2); embed(s2,texts[:200]); t=time.time(); embed(s2,texts); dt2=time.time()-t
    report(lines, f"{name}: 1 thread {len(texts)/dt:.0f} products/s, 2 threads {len(texts)/dt2:.0f} products/s; "
            f"cosine to the fp32 reference min {cos.min():.5f} (mean {cos.mean():.5f}); "
            f"to fp32 on the {len(texts)} product texts min {c2.min():.5f} (mean {c2.mean():.5f})")
write_results("quantization", f"{len(texts)} product texts of {args.db}, batches of 32 sorted by length", args, lines)
