"""Times the extension and the peer service (bench/peer/) on the same requests, from the same
client process, over loopback. Both are measured as an application sees them, from sending the
request to having the parsed result: the extension over the PostgreSQL protocol (psycopg), the peer
over HTTP (its FastAPI app, bench/peer/app.py, under uvicorn, one worker, keep-alive). The peer's
pipeline is also timed called in-process (no HTTP, no JSON), to show how much of each figure is
the service hop and how much is the work.

  python bench/peer_bench.py --db recommender_cj --calls 500 --out bench/results/peer.json
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

import psycopg

sys.path.insert(0, os.path.dirname(__file__))
from peer.service import Service, Settings  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PORT = int(os.environ.get("PEER_PORT", "28900"))


class PeerServer:
    """The peer's FastAPI app under uvicorn, in a process of its own, with one configuration."""

    def __init__(self, dsn: str, model_dir: str, ce_dir: str | None, settings: Settings):
        from dataclasses import asdict
        env = dict(os.environ, PEER_DSN=dsn, PEER_MODEL_DIR=model_dir, PEER_CE_DIR=ce_dir or "",
                   PEER_SETTINGS=json.dumps(asdict(settings)))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", os.path.join(HERE, "peer"),
             "--host", "127.0.0.1", "--port", str(PEER_PORT), "--workers", "1", "--log-level", "warning",
             "--no-access-log", "--timeout-keep-alive", "3600"], env=env)
        for _ in range(600):
            try:
                self.conn = http.client.HTTPConnection("127.0.0.1", PEER_PORT)
                self.get("/health")
                return
            except (ConnectionRefusedError, http.client.HTTPException, OSError):
                time.sleep(0.1)
        raise RuntimeError("the peer service did not start")

    def _call(self, method: str, path: str, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"peer {method} {path}: {r.status} {data[:200]!r}")
        return json.loads(data)

    def get(self, path: str):
        return self._call("GET", path)

    def post(self, path: str, doc):
        return self._call("POST", path, json.dumps(doc))

    def max_rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmHWM")) / 1024

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(30)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(xs: list[float]) -> dict:
    return {"calls": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95), "p99": pct(xs, 99), "mean": statistics.fmean(xs)}


def timed(fn, args_list) -> list[float]:
    out = []
    for a in args_list:
        t0 = time.perf_counter()
        fn(*a)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="recommender_cj")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--as-of", default="2018-01-01")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dsn = f"host=127.0.0.1 port={os.environ.get('PGPORT', '28815')} user=postgres dbname={a.db}"
    share = subprocess.check_output(["/usr/lib/postgresql/15/bin/pg_config", "--sharedir"], text=True).strip()
    model_dir = f"{share}/recommender/models"
    # a deterministic cross-encoder of ms-marco-MiniLM-L-6-v2's size (6 x 384; bench/pipeline_bench.sh
    # installs it), so the cross-encoder rows cost what the real model costs
    ce_dir = f"{share}/recommender/bench-models/cross-encoder"

    ext = psycopg.connect(dsn, autocommit=True)
    ext.execute("SELECT set_config('recommender.as_of', %s, false)", (a.as_of,))
    ext.execute("SET client_min_messages = warning")
    ext.execute("SELECT recommender.preload_models()")
    n = a.calls
    users = [r[0] for r in ext.execute(
        "SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id) LIMIT %s",
        (n - n // 10,)).fetchall()]
    users += [f"cold-start-{i}" for i in range(n - len(users))]
    items = [r[0] for r in ext.execute(
        "SELECT product_id FROM (SELECT DISTINCT product_id FROM recommender.product_daily) s ORDER BY md5(product_id::text) LIMIT %s",
        (n,)).fetchall()]
    names = [r[0] for r in ext.execute("SELECT name FROM recommender.products ORDER BY md5(product_id::text) LIMIT %s", (n * 20,)).fetchall()]
    docs = [(f"{names[i]} and similar groceries", names[i * 20 % len(names):][:20]) for i in range(n)]

    def ext_call(sql):
        return lambda *args: ext.execute(sql, args).fetchall()

    results: dict[str, dict] = {}

    def both(label, ext_fn, peer_fn, http_fn, args_list, setup_ext=(), peer_settings=None, cross=False):
        for s in setup_ext:
            ext.execute(s)
        settings = peer_settings or Settings(as_of=a.as_of)
        peer = Service(dsn, model_dir, ce_dir if cross else None, settings)
        server = PeerServer(dsn, model_dir, ce_dir if cross else None, settings)
        for args in args_list:            # warm-up: profiles cached, models loaded, pages in cache
            ext_fn(*args)
            peer_fn(peer)(*args)
            http_fn(server, *args)
        e = timed(ext_fn, args_list)
        h = timed(lambda *x: http_fn(server, *x), args_list)
        p = timed(peer_fn(peer), args_list)
        rss.append(server.max_rss_mib())
        server.stop()
        results[label] = {"extension": summary(e), "peer": summary(h), "peer_inprocess": summary(p),
                          "extension_ms": e, "peer_ms": h, "peer_inprocess_ms": p}
        print(f"{label:45s} extension p50 {results[label]['extension']['p50']:7.1f} ms   "
              f"peer service p50 {results[label]['peer']['p50']:7.1f} ms   "
              f"(peer in-process {results[label]['peer_inprocess']['p50']:7.1f} ms)", flush=True)
        peer.db.close()

    rss: list[float] = []
    hp = ext_call("SELECT * FROM recommender.homepage(%s, %s::int)")
    hp_http = lambda srv, u, k: srv.get(f"/homepage/{u}?k={k}")  # noqa: E731
    uargs = [(u, 12) for u in users]
    both("homepage (no rerank)", hp, lambda p: p.homepage, hp_http, uargs,
         ["SET recommender.enable_rerank = off"], Settings(as_of=a.as_of, enable_rerank=False))
    both("homepage (bi-encoder rerank of 20)", hp, lambda p: p.homepage, hp_http, uargs,
         ["RESET recommender.enable_rerank", "RESET recommender.cross_encoder_dir"])
    # Every pair scored (both sides' score caches off), on the first 100 users: ~0.5 s a call.
    both("homepage (cross-encoder 6x384, no score cache)", hp, lambda p: p.homepage, hp_http, uargs[:100],
         [f"SET recommender.cross_encoder_dir = '{ce_dir}'", "SET recommender.rerank_cache_size = 0",
          # the scores shared between backends (0.12.0) off: the peer has no such table
          "SET recommender.rerank_share_seconds = 0"],
         Settings(as_of=a.as_of, rerank_cache_size=0), cross=True)
    # After the warm-up call every user's profile is unchanged: a repeat visit, pairs cached on both sides.
    both("homepage (cross-encoder 6x384, repeat visit)", hp, lambda p: p.homepage, hp_http, uargs,
         ["RESET recommender.rerank_cache_size"], cross=True)
    iargs = [(i, 12) for i in items]
    both("similar_products (cross-encoder 6x384, viewed before)", ext_call("SELECT * FROM recommender.similar_products(%s::bigint, %s::int)"),
         lambda p: p.similar_products, lambda srv, i, k: srv.get(f"/similar/{i}?k={k}"), iargs, cross=True)
    both("frequently_bought_together", ext_call("SELECT * FROM recommender.frequently_bought_together(%s::bigint, %s::int)"),
         lambda p: p.frequently_bought_together, lambda srv, i, k: srv.get(f"/frequently-bought-together/{i}?k={k}"),
         [(i, 8) for i in items])
    rr_http = lambda srv, q, d: srv.post("/rerank", {"query": q, "documents": d})  # noqa: E731
    both("rerank of 20 documents (cross-encoder 6x384, no score cache)", ext_call("SELECT * FROM recommender.rerank(%s, %s::text[])"),
         lambda p: p.rerank, rr_http, docs[:100], ["SET recommender.rerank_cache_size = 0"],
         Settings(as_of=a.as_of, rerank_cache_size=0), cross=True)
    ext.execute("RESET recommender.rerank_cache_size")
    ext.execute("RESET recommender.rerank_share_seconds")
    ext.execute("RESET recommender.cross_encoder_dir")
    both("rerank of 20 documents (bi-encoder)", ext_call("SELECT * FROM recommender.rerank(%s, %s::text[])"),
         lambda p: p.rerank, rr_http, docs)

    # bulk embedding: the same 2,000 product texts
    texts = [r[0] for r in ext.execute(
        "SELECT recommender.product_text(name, description, category, price::float8) FROM recommender.products ORDER BY product_id LIMIT 2000").fetchall()]
    t0 = time.perf_counter()
    ext.execute("SELECT count(*) FROM unnest(recommender.embed(%s::text[]))", (texts,)).fetchall()
    e_rate = len(texts) / (time.perf_counter() - t0)
    peer = Service(dsn, model_dir, None, Settings(as_of=a.as_of))
    t0 = time.perf_counter()
    peer.encoder.embed(texts)
    p_rate = len(texts) / (time.perf_counter() - t0)
    distinct = len(set(texts))
    results["bulk embedding (products/s, 2,000 CJ texts)"] = {"extension": e_rate, "peer": p_rate, "distinct": distinct}
    print(f"bulk embedding: extension {e_rate:.0f}/s, peer {p_rate:.0f}/s ({distinct} distinct texts; "
          f"the extension runs each once: {e_rate * distinct / len(texts):.0f} texts/s)", flush=True)
    results["peer_process_max_rss_mib"] = max(rss)
    with open(a.out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
