"""The peer as its users deploy it: a FastAPI app (the design's original is one) around
bench/peer/service.py, served by uvicorn on loopback. Applications reach it over HTTP the way they
reach the extension over the PostgreSQL protocol, so bench/peer_bench.py times both from the same
client, request sent to response parsed. Not part of the product.

Configured by environment variables (bench/peer_bench.py starts one server per configuration):
  PEER_DSN, PEER_MODEL_DIR, PEER_CE_DIR (empty: bi-encoder rerank), PEER_SETTINGS (JSON of Settings)

    PEER_DSN=... PEER_MODEL_DIR=... uvicorn app:app --app-dir bench/peer --port 28900
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict

from fastapi import FastAPI
from pydantic import BaseModel

from service import Service, Settings

svc = Service(os.environ["PEER_DSN"], os.environ["PEER_MODEL_DIR"], os.environ.get("PEER_CE_DIR") or None,
              Settings(**json.loads(os.environ.get("PEER_SETTINGS") or "{}")))
app = FastAPI(title="recommendation service (peer)")


def rows(cands) -> list[dict]:
    return [{k: v for k, v in asdict(c).items() if k != "doc"} for c in cands]


class RerankRequest(BaseModel):
    query: str
    documents: list[str]


# Plain `def` endpoints: the service's database driver and model calls block, so FastAPI runs them
# in its worker thread pool, as such services are usually written.
@app.get("/health")
def health() -> dict:
    return {"ok": True}


@app.get("/homepage/{user_id}")
def homepage(user_id: str, k: int = 10) -> list[dict]:
    return rows(svc.homepage(user_id, k))


@app.get("/similar/{product_id}")
def similar(product_id: int, k: int = 10) -> list[dict]:
    return rows(svc.similar_products(product_id, k))


@app.get("/frequently-bought-together/{product_id}")
def fbt(product_id: int, k: int = 8) -> list[dict]:
    return rows(svc.frequently_bought_together(product_id, k))


@app.post("/rerank")
def rerank(req: RerankRequest) -> list[float]:
    return svc.rerank(req.query, req.documents)
