"""What the ONNX Runtime probes (bench/quantization.py, bench/ce_quantization.py) share: the
installed models' directory, the cluster, int8 exports by dynamic quantisation, and sessions
configured like the extension's (one inter-op thread, no spinning)."""
import argparse, datetime, os, subprocess

import onnxruntime as ort
import psycopg
from onnxruntime.quantization import QuantType, quantize_dynamic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The two int8 exports measured: (name, quantize_dynamic arguments).
INT8 = [("int8 (u8 weights)", dict(weight_type=QuantType.QUInt8)),
        ("int8 (s8 weights, per channel)", dict(weight_type=QuantType.QInt8, per_channel=True))]


def cli(flag, default):
    """The probes' arguments: --db (recommender_cj) and one count."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="recommender_cj")
    ap.add_argument(flag, type=int, default=default)
    return ap.parse_args()


def share_dir():
    """The installed extension's share directory (PG_CONFIG, else PostgreSQL 15's)."""
    pg_config = os.environ.get("PG_CONFIG", "/usr/lib/postgresql/15/bin/pg_config")
    return subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True).stdout.strip()


def connect(db):
    return psycopg.connect(host="127.0.0.1", port=int(os.environ.get("PGPORT", "28815")), user="postgres", dbname=db)


def int8_exports(model, tmp):
    """{name: path} of `model` quantised each way of INT8, written under `tmp`."""
    out = {}
    for i, (name, kw) in enumerate(INT8):
        path = os.path.join(tmp, f"int8-{i}.onnx")
        quantize_dynamic(model, path, **kw)
        out[name] = path
    return out


def session(path, threads=1, extra=None):
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = threads, 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for k, v in (extra or {}).items():
        o.add_session_config_entry(k, v)
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def report(lines, line):
    print(line, flush=True)
    lines.append(line)


def write_results(script, what, args, lines):
    """bench/results/<script>.txt: when, where, the command, then `lines`."""
    flags = " ".join(f"--{k} {v}" for k, v in vars(args).items())
    head = (f"{script}: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}, {os.cpu_count()} cores, "
            f"onnxruntime {ort.__version__}, {what}\n"
            f"command: .run/venv/bin/python bench/{script}.py {flags}\n")
    with open(f"{ROOT}/bench/results/{script}.txt", "w") as f:
        f.write(head + "\n".join(lines) + "\n")
