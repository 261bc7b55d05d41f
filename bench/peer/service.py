"""The peer: the recommendation service this extension replaces, built the way its users would
build it without the extension -- a Python process next to the database.

It reads the same database over a connection (psycopg), embeds with onnxruntime + tokenizers in
Python from the same model files, reranks with the same cross-encoder file, and applies the same
rules with the same SQL for candidates. It keeps an in-process profile cache keyed like the
extension's (interaction count and newest id at the clock), so neither side recomputes a profile
it already has. Not part of the product: it exists to be timed next to it (bench/peer_bench.py).
"""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort
import psycopg
from tokenizers import Tokenizer

DIM = 384
MAX_TOKENS = 256


def _session(path: str) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1        # the extension runs one intra-op thread per backend too
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def _tokenizer(path: str) -> Tokenizer:
    t = Tokenizer.from_file(path)
    t.no_padding()
    t.enable_truncation(MAX_TOKENS)
    return t


def _model_file(d: str) -> str:
    for f in ("model.ort", "model.onnx"):
        if os.path.isfile(os.path.join(d, f)):
            return os.path.join(d, f)
    raise FileNotFoundError(f"no model.ort / model.onnx in {d}")


class _Model:
    """A BERT-style ONNX model with its tokenizer, run in length-sorted, padded batches."""

    def __init__(self, d: str):
        self.sess = _session(_model_file(d))
        self.tok = _tokenizer(os.path.join(d, "tokenizer.json"))
        self.names = [i.name for i in self.sess.get_inputs()]

    def _runs(self, inputs: list, batch: int):
        """Yields (input positions, attention mask, first output) per batch."""
        enc = self.tok.encode_batch(inputs)
        order = sorted(range(len(inputs)), key=lambda i: len(enc[i].ids))
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            seq = max(len(enc[i].ids) for i in idx)
            ids = np.zeros((len(idx), seq), dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for r, i in enumerate(idx):
                n = len(enc[i].ids)
                ids[r, :n] = enc[i].ids
                mask[r, :n] = 1
                types[r, :n] = enc[i].type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            yield idx, mask, self.sess.run(None, {k: v for k, v in feed.items() if k in self.names})[0]


class Encoder(_Model):
    """all-MiniLM-L6-v2: mean pooling + L2 normalisation."""

    def embed(self, texts: list[str], batch: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for idx, mask, h in self._runs(texts, batch):
            m = mask[:, :, None].astype(np.float32)
            v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            out[idx] = v
        return out


class CrossEncoder(_Model):
    """A BERT sequence-classification export: [CLS] q [SEP] d [SEP], one logit per pair. Keeps the
    scores of up to `cache_size` pairs (least recently used dropped first): the same caching idea
    as the extension's recommender.rerank_cache_size, so the comparison is like for like."""

    def __init__(self, d: str, cache_size: int = 0):
        super().__init__(d)
        self.cache_size = cache_size
        self.cache: OrderedDict[tuple[str, str], float] = OrderedDict()

    def scores(self, query: str, docs: list[str], batch: int = 32) -> list[float]:
        out: list[float | None] = [self.cache.get((query, d)) for d in docs]
        todo = sorted({d for d, v in zip(docs, out) if v is None})
        fresh: dict[str, float] = {}
        for idx, _, logits in self._runs([(query, d) for d in todo], batch):
            for r, i in enumerate(idx):
                fresh[todo[i]] = float(logits.reshape(len(idx), -1)[r, -1])
        for i, d in enumerate(docs):
            if out[i] is None:
                out[i] = fresh[d]
            if self.cache_size > 0:
                self.cache[(query, d)] = out[i]
                self.cache.move_to_end((query, d))
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return out


def _vec(v) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v) + "]"


def _parse_vec(s: str) -> np.ndarray:
    return np.array(json.loads(s), dtype=np.float32)


def normalize(values: list[float]) -> list[float]:
    fin = [v for v in values if math.isfinite(v)]
    if not fin:
        return [0.0] * len(values)
    lo, hi = min(fin), max(fin)
    return [0.0 if not math.isfinite(v) else (v - lo) / (hi - lo) if hi > lo else (1.0 if v > 0 else 0.0)
            for v in values]


@dataclass
class Cand:
    product_id: int
    name: str | None
    category: str | None
    in_stock: bool
    age_days: float
    purchased: bool
    doc: str
    content: float = 0.0
    collab: float = 0.0
    pop: float = 0.0
    score: float = 0.0
    rerank: float | None = None


@dataclass
class Settings:
    alpha: float = 0.5
    beta: float = 0.3
    gamma: float = 0.2
    content_candidates: int = 50
    collaborative_candidates: int = 50
    rerank_top_n: int = 20
    rerank_weight: float = 0.5
    enable_rerank: bool = True
    rerank_cache_size: int = 20000
    max_per_category: int = 3
    new_arrival_days: float = 30
    new_arrival_boost: float = 0.1
    window_days: int = 30
    decay_days: float = 30
    as_of: str | None = None


@dataclass
class Service:
    dsn: str
    model_dir: str
    cross_encoder_dir: str | None = None
    settings: Settings = field(default_factory=Settings)

    def __post_init__(self):
        self.db = psycopg.connect(self.dsn, autocommit=True)
        self.db.execute("SET hnsw.ef_search = 100")
        self.db.execute("SET hnsw.iterative_scan = 'strict_order'")
        if self.settings.as_of:
            self.db.execute("SELECT set_config('recommender.as_of', %s, false)", (self.settings.as_of,))
        self.clock = self.db.execute("SELECT coalesce(nullif(current_setting('recommender.as_of', true), '')::timestamptz, now())").fetchone()[0]
        self.encoder = Encoder(os.path.join(self.model_dir, "encoder"))
        ce = self.cross_encoder_dir
        self.cross = CrossEncoder(ce, self.settings.rerank_cache_size) if ce and os.path.isfile(os.path.join(ce, "tokenizer.json")) else None
        self.profiles: dict[str, tuple[tuple, dict]] = {}
        self.weights = dict(self.db.execute("SELECT type::text, weight FROM recommender.interaction_weights").fetchall())

    def q(self, sql: str, args=()) -> list[tuple]:
        return self.db.execute(sql, args).fetchall()

    # ---- profile ---------------------------------------------------------------------------
    def profile(self, user_id: str) -> dict | None:
        key = self.q("SELECT count(*), max(interaction_id) FROM recommender.interactions WHERE user_id = %s AND occurred_at <= %s",
                     (user_id, self.clock))[0]
        hit = self.profiles.get(user_id)
        if hit and hit[0] == key:
            return hit[1]
        if key[0] == 0:
            return None
        rows = self.q(
            """SELECT extract(epoch FROM i.occurred_at) / 86400.0, i.type::text, p.embedding::text, p.category
                 FROM recommender.interactions i JOIN recommender.products p USING (product_id)
                WHERE i.user_id = %s AND i.occurred_at <= %s""", (user_id, self.clock))
        newest = max(float(r[0]) for r in rows)
        acc = np.zeros(DIM)
        cats: dict[str, float] = {}
        for days, typ, emb, cat in rows:
            wd = self.weights.get(typ, 0.0) * math.exp(-max(newest - float(days), 0) / self.settings.decay_days)
            if emb:
                acc += wd * _parse_vec(emb)
            if wd > 0 and cat:
                cats[cat] = cats.get(cat, 0.0) + wd
        n = np.linalg.norm(acc)
        top = [c for c, _ in sorted(cats.items(), key=lambda x: (-x[1], x[0]))[:3]]
        recent = [r[0] for r in self.q(
            """SELECT p.name FROM recommender.user_products u JOIN recommender.products p USING (product_id)
                WHERE u.user_id = %s AND u.weight > 0 AND u.last_at <= %s ORDER BY u.last_at DESC, p.product_id LIMIT 3""",
            (user_id, self.clock))]
        prof = {"pref": acc / n if n > 0 else None, "top": top, "recent": recent}
        self.profiles[user_id] = (key, prof)
        return prof

    # ---- stage 1 ---------------------------------------------------------------------------
    def content(self, centre: np.ndarray, n: int, exclude: list[int]) -> list[tuple[int, float]]:
        v = _vec(centre)
        return self.q("""SELECT product_id, 1 - (embedding <=> %s::vector) FROM recommender.products
                          WHERE in_stock AND NOT (product_id = ANY(%s))
                          ORDER BY embedding <=> %s::vector LIMIT %s""", (v, exclude, v, n))

    def similar_users(self, user_id: str, n: int):
        return self.q(
            """WITH mine AS (
                 SELECT product_id FROM recommender.user_products
                  WHERE user_id = %(u)s AND weight > 0 AND last_at <= %(c)s ORDER BY last_at DESC, product_id LIMIT 20),
               neighbours AS (
                 SELECT o.user_id, count(*) AS overlap FROM mine m
                  CROSS JOIN LATERAL (SELECT u.user_id FROM recommender.user_products u
                                       WHERE u.product_id = m.product_id AND u.user_id <> %(u)s AND u.weight > 0
                                       ORDER BY u.weight DESC LIMIT 100) o
                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20)
               SELECT u.product_id, sum(n.overlap * ln(1 + u.weight))::float8 FROM neighbours n
                CROSS JOIN LATERAL (SELECT p.product_id, p.weight FROM recommender.user_products p
                                     WHERE p.user_id = n.user_id AND p.weight > 0 ORDER BY p.weight DESC LIMIT 100) u
                WHERE u.product_id NOT IN (SELECT product_id FROM mine)
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %(n)s""", {"u": user_id, "c": self.clock, "n": n})

    def copurchase(self, items: list[int], n: int):
        if not items:
            return []
        return self.q("""SELECT c.product_b, sum(c.baskets)::float8 FROM unnest(%s::bigint[]) AS a(id)
                          CROSS JOIN LATERAL (SELECT product_b, baskets FROM recommender.copurchase
                                               WHERE product_a = a.id AND baskets > 0 ORDER BY baskets DESC LIMIT 200) c
                          WHERE NOT (c.product_b = ANY(%s)) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s""", (items, items, n))

    def popularity(self, ids: list[int]) -> dict[int, float]:
        return dict(self.q("""SELECT product_id, sum(weight)::float8 FROM recommender.product_daily
                               WHERE product_id = ANY(%s) AND day > (%s::timestamptz - make_interval(days => %s))::date
                                 AND day <= %s::timestamptz::date GROUP BY 1""",
                           (ids, self.clock, self.settings.window_days, self.clock)))

    def details(self, ids: list[int], centre, user_id) -> dict[int, Cand]:
        rows = self.q(
            """SELECT p.product_id, p.name, p.category, p.in_stock,
                      extract(epoch FROM %s::timestamptz - p.created_at) / 86400.0,
                      CASE WHEN %s::vector IS NULL OR p.embedding IS NULL THEN 0 ELSE 1 - (p.embedding <=> %s::vector) END,
                      EXISTS (SELECT 1 FROM recommender.user_products u WHERE u.user_id = %s AND u.product_id = p.product_id AND u.purchases > 0),
                      left(concat_ws('. ', p.name, 'Category: ' || p.category, left(p.description, 200)), 400)
                 FROM recommender.products p WHERE p.product_id = ANY(%s)""",
            (self.clock, _vec(centre) if centre is not None else None, _vec(centre) if centre is not None else None, user_id, ids))
        return {r[0]: Cand(r[0], r[1], r[2], r[3], float(r[4]), r[6], r[7], content=float(r[5])) for r in rows}

    # ---- stages 2-4 ------------------------------------------------------------------------
    def finish(self, pool: dict[int, dict], centre, user_id, exclude: list[int], query: str, k: int,
               allow_purchased: bool = True, cap: bool = True, taken: tuple[str, ...] = ()) -> list[Cand]:
        s = self.settings
        ids = [i for i in pool if i not in exclude]
        det = self.details(ids, centre, user_id)
        pop = self.popularity(ids)
        cands = []
        for i in ids:
            c = det.get(i)
            if c is None:
                continue
            c.content = pool[i].get("content", c.content)
            c.collab = pool[i].get("collab", 0.0)
            c.pop = pop.get(i, 0.0)
            cands.append(c)
        cn, bn, pn = (normalize([getattr(c, a) for c in cands]) for a in ("content", "collab", "pop"))
        for c, a, b, p in zip(cands, cn, bn, pn):
            c.score = s.alpha * a + s.beta * b + s.gamma * p
        cands.sort(key=lambda c: (-c.score, c.product_id))
        # The same selection as the extension: showable, one per name, not named like the page's product.
        showable, seen = [], set(taken)
        for c in cands:
            if len(showable) >= s.rerank_top_n:
                break
            key = c.name.lower() if c.name is not None else None
            if not c.in_stock or (c.purchased and not allow_purchased) or (key is not None and key in seen):
                continue
            if key is not None:
                seen.add(key)
            showable.append(c)
        if s.enable_rerank and showable and query:
            if self.cross is not None:
                r = [1 / (1 + math.exp(-x)) for x in self.cross.scores(query, [c.doc for c in showable])]
            else:
                qv = self.encoder.embed([query])[0]
                embs = dict(self.q("SELECT product_id, embedding::text FROM recommender.products WHERE product_id = ANY(%s)",
                                   ([c.product_id for c in showable],)))
                r = [(float(qv @ _parse_vec(embs[c.product_id])) + 1) / 2 if embs.get(c.product_id) else 0.0 for c in showable]
            for c, x in zip(showable, r):
                c.rerank = x
            for c in cands:
                c.score = (1 - s.rerank_weight) * c.score + s.rerank_weight * (c.rerank or 0.0)
        for c in cands:
            if 0 <= c.age_days < s.new_arrival_days:
                c.score *= 1 + s.new_arrival_boost
        cands.sort(key=lambda c: (-c.score, c.product_id))
        out, per_cat, names = [], {}, set(taken)
        for c in cands:
            if len(out) >= k:
                break
            if not c.in_stock or (c.purchased and not allow_purchased):
                continue
            key = c.name.lower() if c.name is not None else None
            if key is not None and key in names:
                continue
            if cap and c.category is not None and per_cat.get(c.category, 0) >= s.max_per_category:
                continue
            if key is not None:
                names.add(key)
            per_cat[c.category] = per_cat.get(c.category, 0) + 1
            out.append(c)
        return out

    # ---- the endpoints ---------------------------------------------------------------------
    def popular(self, k: int) -> list[Cand]:
        top = self.q("""SELECT d.product_id, sum(d.weight)::float8 FROM recommender.product_daily d
                         WHERE d.day > (%s::timestamptz - make_interval(days => %s))::date AND d.day <= %s::timestamptz::date
                         GROUP BY 1 HAVING sum(d.weight) > 0 ORDER BY 2 DESC, 1 LIMIT %s""",
                     (self.clock, self.settings.window_days, self.clock, k * 3 + 50))
        det = self.details([t[0] for t in top], None, None)
        out, per_cat = [], {}
        for pid, _ in top:
            c = det.get(pid)
            if c and c.in_stock and per_cat.get(c.category, 0) < self.settings.max_per_category:
                per_cat[c.category] = per_cat.get(c.category, 0) + 1
                out.append(c)
            if len(out) >= k:
                break
        return out

    def homepage(self, user_id: str, k: int) -> list[Cand]:
        prof = self.profile(user_id)
        if prof is None or prof["pref"] is None:
            return self.popular(k)
        s = self.settings
        pool: dict[int, dict] = {}
        for i, sc in self.content(prof["pref"], max(s.content_candidates, k), []):
            pool.setdefault(i, {})["content"] = sc
        recent = [r[0] for r in self.q("""SELECT product_id FROM recommender.user_products WHERE user_id = %s AND purchases > 0
                                          AND last_at <= %s ORDER BY last_at DESC, product_id LIMIT 10""", (user_id, self.clock))]
        for items in (self.similar_users(user_id, s.collaborative_candidates), self.copurchase(recent, s.collaborative_candidates)):
            for (i, _), n in zip(items, normalize([x[1] for x in items])):
                e = pool.setdefault(i, {})
                e["collab"] = max(e.get("collab", 0.0), n)
        query = " ".join(filter(None, [f"Interested in {', '.join(prof['top'])}." if prof["top"] else "",
                                       f"Recently: {'; '.join(prof['recent'])}." if prof["recent"] else ""]))
        return self.finish(pool, prof["pref"], user_id, [], query, k)

    def similar_products(self, product_id: int, k: int) -> list[Cand]:
        row = self.q("""SELECT embedding::text, left(concat_ws('. ', name, 'Category: ' || category, left(description, 200)), 400), name
                          FROM recommender.products WHERE product_id = %s AND embedding IS NOT NULL""", (product_id,))
        if not row:
            return []
        centre, doc = _parse_vec(row[0][0]), row[0][1]
        taken = (row[0][2].lower(),) if row[0][2] is not None else ()
        s = self.settings
        pool: dict[int, dict] = {}
        for i, sc in self.content(centre, max(s.content_candidates, k), [product_id]):
            pool.setdefault(i, {})["content"] = sc
        items = self.copurchase([product_id], s.collaborative_candidates)
        for (i, _), n in zip(items, normalize([x[1] for x in items])):
            pool.setdefault(i, {})["collab"] = n
        return self.finish(pool, centre, None, [product_id], doc, k, cap=False, taken=taken)

    def frequently_bought_together(self, product_id: int, k: int) -> list[Cand]:
        co = self.copurchase([product_id], k * 3)
        det = self.details([c[0] for c in co], None, None)
        return [det[c[0]] for c in co if c[0] in det and det[c[0]].in_stock][:k]

    def rerank(self, query: str, docs: list[str]) -> list[float]:
        if self.cross is not None:
            return [1 / (1 + math.exp(-x)) for x in self.cross.scores(query, docs)]
        v = self.encoder.embed([query] + docs)
        return [(float(v[0] @ d) + 1) / 2 for d in v[1:]]
