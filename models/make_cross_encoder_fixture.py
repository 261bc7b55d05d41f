#!/usr/bin/env python3
"""Writes tests/fixtures/cross-encoder-reference.json: logits of the deterministic test
cross-encoder for fixed (query, document) pairs, computed independently of the extension with
Python's `tokenizers` (pair encoding, token_type_ids) and `onnxruntime` on model.onnx.
A developer tool (needs `pip install tokenizers onnxruntime`); the extension's tests compare
their own tokenisation + inference against this file.

usage: make_cross_encoder_fixture.py MODEL.onnx TOKENIZER.json OUT.json"""
import json
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

PAIRS = [
    ("dark roast coffee", "Espresso ground coffee. Category: Coffee."),
    ("dark roast coffee", "Wireless noise-cancelling headphones. Category: Audio."),
    ("Interested in Tea. Recently: Green tea.", "Earl Grey black tea, loose leaf 200 g"),
    ("", "an empty query"),
    ("héllo wörld 👋", "emoji and accents"),
]

model, tok_path, out = sys.argv[1:4]
tok = Tokenizer.from_file(tok_path)
tok.no_padding()
tok.enable_truncation(256)
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
rows = []
for q, d in PAIRS:
    e = tok.encode(q, d)
    ids = np.array([e.ids], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.array([e.type_ids], dtype=np.int64)}
    logit = float(sess.run(None, feed)[0][0][0])
    rows.append({"query": q, "document": d, "token_ids": e.ids, "type_ids": e.type_ids, "logit": logit})
with open(out, "w") as f:
    json.dump({"model": "test cross-encoder (models/manifest.json: test-cross-encoder)", "pairs": rows}, f, indent=1)
    f.write("\n")
