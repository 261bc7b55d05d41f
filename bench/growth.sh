#!/usr/bin/env bash
# Catalogue growth: homepage latency (server-side, no rerank and bi-encoder rerank) on smaller
# copies of Complete Journey holding the 10,000 and 30,000 best-selling products (their purchases
# only; aggregates rebuilt with refresh_aggregates(), HNSW index rebuilt), next to the full
# 92,331-product database. Writes bench/results/growth.txt.
source "$(dirname "$0")/../scripts/lib.sh"

SRC=${CJ_DB:-recommender_cj}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
"$ROOT/scripts/cluster.sh" start
time_homepage() {  # db -> "products | p50 no rerank | p50 bi-encoder rerank" over 300 warm calls
  psql -XAtq -d "$1" -v ON_ERROR_STOP=1 <<'SQL'
SET recommender.as_of = '2018-01-01';
SET client_min_messages = warning;
CREATE TEMP TABLE users AS
  SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id) LIMIT 300;
CREATE TEMP TABLE timings (fn text, ms double precision);
CREATE FUNCTION pg_temp.time_it(fn text, u text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  t0 := clock_timestamp();
  PERFORM count(*) FROM recommender.homepage(u, 12);
  INSERT INTO timings VALUES (fn, extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
SELECT recommender.preload_models() IS NOT NULL;
SELECT count(*) FROM users u, LATERAL recommender.homepage(u.user_id, 12) h;
SET recommender.enable_rerank = off;
SELECT count(pg_temp.time_it('no rerank', user_id)) FROM users;
RESET recommender.enable_rerank;
SELECT count(pg_temp.time_it('bi-encoder', user_id)) FROM users;
SELECT (SELECT count(*) FROM recommender.products) || ' | ' ||
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) FROM timings WHERE fn = 'no rerank') || ' | ' ||
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) FROM timings WHERE fn = 'bi-encoder');
SQL
}
out="$ROOT/bench/results/growth.txt"
mkdir -p "$(dirname "$out")"
echo "products | homepage p50 ms, no rerank | homepage p50 ms, bi-encoder rerank (300 households, server-side; $(date -u +%F))" >"$out"
for n in 10000 30000; do
  db="recommender_growth_$n"
  if ! psql -XAtq -d "$db" -c "SELECT 1" >/dev/null 2>&1; then
    log "growth: $db (the $n best-selling products)"
    createdb -T "$SRC" "$db"
    psql -XAtq -d "$db" -v ON_ERROR_STOP=1 <<SQL >/dev/null
SET client_min_messages = warning;
CREATE TEMP TABLE keep AS
  SELECT product_id FROM recommender.product_daily GROUP BY 1 ORDER BY sum(purchases) DESC, 1 LIMIT $n;
TRUNCATE recommender.product_daily, recommender.user_products, recommender.copurchase,
         recommender.user_profiles, recommender.popular_cache;
ALTER TABLE recommender.interactions DISABLE TRIGGER USER;
DELETE FROM recommender.interactions i WHERE NOT EXISTS (SELECT 1 FROM keep k WHERE k.product_id = i.product_id);
ALTER TABLE recommender.interactions ENABLE TRIGGER USER;
DELETE FROM recommender.products p WHERE NOT EXISTS (SELECT 1 FROM keep k WHERE k.product_id = p.product_id);
SELECT recommender.refresh_aggregates();
REINDEX INDEX recommender.products_embedding_hnsw;
VACUUM ANALYZE;
SQL
  fi
  psql -XAtq -d "$db" -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
  time_homepage "$db" | tail -1 | tee -a "$out"
done
time_homepage "$SRC" | tail -1 | tee -a "$out"
