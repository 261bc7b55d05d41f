#!/usr/bin/env python3
"""Build BERT ONNX graphs with the `onnx` helper API, without torch.

Two uses:

* ``encoder``: all-MiniLM-L6-v2 (or any BertModel) from a ``model.safetensors`` + ``config.json``.
  Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, [batch, seq]); output
  ``last_hidden_state`` ([batch, seq, hidden]) -- the same interface as a Hugging Face / optimum
  export, so the extension's pooling code serves both.
* ``test-cross-encoder``: a small BertForSequenceClassification with *deterministic random* weights
  (seeded numpy), the layout of cross-encoder/ms-marco-MiniLM-L-6-v2 (pooler with tanh, one logit,
  token_type_ids), used by the tests because no registry ships real cross-encoder weights.

The serialised graph is deterministic for the same inputs, so its sha256 is pinned in manifest.json.
"""
import argparse
import json
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization is a standard op from opset 17
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path):
    """Minimal safetensors reader: 8-byte little-endian header length, JSON header, raw tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=_DTYPES[meta["dtype"]]).reshape(meta["shape"])
        out[name.removeprefix("bert.")] = arr.astype(np.float32) if arr.dtype == np.float16 else arr
    return out


class Graph:
    def __init__(self):
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, hint):
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, w, b, prefix):
        """x @ W^T + b, with W stored transposed ([in, out]) as MatMul expects."""
        wt = self.const(prefix + ".weight_t", w.T.astype(np.float32))
        bb = self.const(prefix + ".bias", b.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, wt]), bb])

    def layer_norm(self, x, w, b, prefix, eps):
        g = self.const(prefix + ".weight", w.astype(np.float32))
        bb = self.const(prefix + ".bias", b.astype(np.float32))
        return self.op("LayerNormalization", [x, g, bb], axis=-1, epsilon=eps)


def build_bert(weights, cfg, classifier):
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim, eps = hidden // heads, float(cfg.get("layer_norm_eps", 1e-12))
    g = Graph()
    W = weights

    # Embeddings: word + position + token type, then LayerNorm.
    word = g.op("Gather", [g.const("embeddings.word_embeddings.weight", W["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    # position embeddings: rows [0, seq) of the table, broadcast over the batch
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)
    pos = g.op("Slice", [g.const("embeddings.position_embeddings.weight", W["embeddings.position_embeddings.weight"]),
                         g.const("c_zero1", np.array([0], dtype=np.int64)), seq_len,
                         g.const("c_axis0", np.array([0], dtype=np.int64))])
    tt = g.op("Gather", [g.const("embeddings.token_type_embeddings.weight", W["embeddings.token_type_embeddings.weight"]), "token_type_ids"], axis=0)
    x = g.op("Add", [g.op("Add", [word, pos]), tt])
    x = g.layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], "embeddings.LayerNorm", eps)

    # Additive attention mask [batch, 1, 1, seq]: 0 where attended, float32 min where padded.
    m = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    m = g.op("Sub", [g.const("c_onef", np.array(1.0, dtype=np.float32)), m])
    m = g.op("Mul", [m, g.const("c_neg", np.array(np.finfo(np.float32).min, dtype=np.float32))])
    mask = g.op("Unsqueeze", [m, g.const("c_axes12", np.array([1, 2], dtype=np.int64))])

    split_shape = g.const("c_split", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = g.const("c_merge", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("c_scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))
    sqrt2 = g.const("c_sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    half = g.const("c_half", np.array(0.5, dtype=np.float32))
    onef = "c_onef"

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = g.linear(x, W[p + "attention.self.query.weight"], W[p + "attention.self.query.bias"], p + "q")
        k = g.linear(x, W[p + "attention.self.key.weight"], W[p + "attention.self.key.bias"], p + "k")
        v = g.linear(x, W[p + "attention.self.value.weight"], W[p + "attention.self.value.bias"], p + "v")
        q = g.op("Transpose", [g.op("Reshape", [q, split_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_shape])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_shape])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = g.linear(ctx, W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"], p + "ao")
        x = g.layer_norm(g.op("Add", [attn, x]), W[p + "attention.output.LayerNorm.weight"],
                         W[p + "attention.output.LayerNorm.bias"], p + "ao.LayerNorm", eps)
        h = g.linear(x, W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"], p + "i")
        # exact GELU: 0.5 * h * (1 + erf(h / sqrt(2)))
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), onef])])
        o = g.linear(h, W[p + "output.dense.weight"], W[p + "output.dense.bias"], p + "o")
        x = g.layer_norm(g.op("Add", [o, x]), W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"],
                         p + "o.LayerNorm", eps)

    ints = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
            for n in ("input_ids", "attention_mask", "token_type_ids")]
    if classifier:
        # [CLS] token: Gather with a 1-element index keeps the axis, Squeeze drops it -> [batch, hidden]
        cls = g.op("Gather", [x, g.const("c_zero_idx", np.array([0], dtype=np.int64))], axis=1)
        cls = g.op("Squeeze", [cls, g.const("c_axis1", np.array([1], dtype=np.int64))])
        pooled = g.op("Tanh", [g.linear(cls, W["pooler.dense.weight"], W["pooler.dense.bias"], "pooler")])
        logits = g.linear(pooled, W["classifier.weight"], W["classifier.bias"], "classifier")
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
        outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])]
    else:
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
        outs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])]

    graph = helper.make_graph(g.nodes, "bert", ints, outs, initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="recommender")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def random_cross_encoder(seed, layers, hidden, heads, intermediate, vocab, max_pos):
    """Deterministic weights of a BertForSequenceClassification (one logit)."""
    rng = np.random.default_rng(seed)
    r = lambda *shape: (rng.standard_normal(shape) * 0.05).astype(np.float32)  # noqa: E731
    W = {
        "embeddings.word_embeddings.weight": r(vocab, hidden),
        "embeddings.position_embeddings.weight": r(max_pos, hidden),
        "embeddings.token_type_embeddings.weight": r(2, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
        "pooler.dense.weight": r(hidden, hidden), "pooler.dense.bias": r(hidden),
        "classifier.weight": r(1, hidden), "classifier.bias": r(1),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            W[p + f"attention.self.{n}.weight"], W[p + f"attention.self.{n}.bias"] = r(hidden, hidden), r(hidden)
        W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"] = r(hidden, hidden), r(hidden)
        W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"] = r(intermediate, hidden), r(intermediate)
        W[p + "output.dense.weight"], W[p + "output.dense.bias"] = r(hidden, intermediate), r(hidden)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            W[p + ln + ".weight"], W[p + ln + ".bias"] = np.ones(hidden, np.float32), np.zeros(hidden, np.float32)
    cfg = dict(hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=layers, layer_norm_eps=1e-12)
    return W, cfg


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encoder")
    e.add_argument("--safetensors", required=True)
    e.add_argument("--config", required=True)
    e.add_argument("--out", required=True)
    c = sub.add_parser("test-cross-encoder")
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=20261126)
    c.add_argument("--layers", type=int, default=2)
    c.add_argument("--hidden", type=int, default=64)
    c.add_argument("--heads", type=int, default=4)
    c.add_argument("--intermediate", type=int, default=128)
    a = ap.parse_args(argv)

    if a.cmd == "encoder":
        with open(a.config) as f:
            cfg = json.load(f)
        model = build_bert(read_safetensors(a.safetensors), cfg, classifier=False)
    else:
        W, cfg = random_cross_encoder(a.seed, a.layers, a.hidden, a.heads, a.intermediate, 30522, 512)
        model = build_bert(W, cfg, classifier=True)
    onnx.save_model(model, a.out)


if __name__ == "__main__":
    main(sys.argv[1:])
