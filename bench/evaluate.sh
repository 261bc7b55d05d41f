#!/usr/bin/env bash
# Offline evaluation on Complete Journey (README "Quality"): a time split, preferences rebuilt from
# the training period only, every product in the catalogue a candidate (no sampled negatives).
#
#   bench/evaluate.sh            (needs recommender_cj: bench/load_complete_journey.sh)
#   EVAL_TEST_DAYS=28 EVAL_USERS=0 (0 = every household with a test purchase)
#
# 1. recommender_eval is a copy of recommender_cj; every interaction at or after T (the last
#    EVAL_TEST_DAYS days) is deleted from it through the extension's own triggers, so the
#    aggregates (co-purchase, popularity, user_products) hold the training period only, and the
#    deleted purchases become the test set. The clock (recommender.as_of) is set to T. The item
#    model is built from what is left (CALL recommender.build_item_model()). The copy is updated
#    to this release before the delete: before 0.7.0 the delete trigger left
#    user_products.first_at/last_at at the held-out period's times, and every "most recent
#    products" ordering (the pipeline's seeds, the baselines' tie-breaks) read the test period
#    through them. A split made that way lacks eval_split.aggregates_rebuilt and is redone.
# 2. For each test household: homepage(user, 10) and three baselines computed in the database:
#    global popularity (purchases in the 30 days before T), item-kNN (co-occurrence cosine over
#    baskets, from each of the household's 50 most recent training products to its 100 most
#    co-purchased partners) and the household's own repeat purchases (most bought first).
# 3. HR@10, Recall@10 and NDCG@10 (binary relevance), each with its standard error over households
#    (sd / sqrt(n)), against the products the household bought in
#    the test period; "new to user" scores only test products the household never bought in
#    training, with the lists built without such products (homepage: enable_repurchase = off).
source "$(dirname "$0")/../scripts/lib.sh"

SRC=${EVAL_SRC:-${CJ_DB:-recommender_cj}}
DB=${EVAL_DB:-recommender_eval}
TEST_DAYS=${EVAL_TEST_DAYS:-28}
USERS=${EVAL_USERS:-0}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

"$ROOT/scripts/cluster.sh" start
psql -XAtq -d "$SRC" -c "SELECT 1" >/dev/null 2>&1 || die "no $SRC database: run bench/load_complete_journey.sh first"
if [ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 1 ] \
   && [ "$(q -c "SELECT count(*) FROM eval_split WHERE test_days = $TEST_DAYS AND aggregates_rebuilt" 2>/dev/null)" = 1 ]; then
  log "evaluate: reusing the split in $DB (dropdb $DB to redo it)"
  q -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
else
  log "evaluate: copying $SRC to $DB"
  dropdb --if-exists "$DB"
  createdb -T "$SRC" "$DB"
  q -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
  log "evaluate: holding out the last $TEST_DAYS days (deleting them through the triggers)"
  q <<SQL
DROP TABLE IF EXISTS eval_split, eval_test, eval_train_items, eval_users, eval_lists;
CREATE TABLE eval_split AS
SELECT $TEST_DAYS AS test_days, (max(occurred_at) - interval '$TEST_DAYS days')::date::timestamptz AS t,
       true AS aggregates_rebuilt
  FROM recommender.interactions;
CREATE TABLE eval_test AS
SELECT DISTINCT i.user_id, i.product_id FROM recommender.interactions i, eval_split s
 WHERE i.type = 'PURCHASE' AND i.occurred_at >= s.t;
DELETE FROM recommender.interactions i USING eval_split s WHERE i.occurred_at >= s.t;
CREATE TABLE eval_train_items AS SELECT DISTINCT user_id, product_id FROM recommender.interactions WHERE type = 'PURCHASE';
CREATE INDEX ON eval_train_items (user_id);
TRUNCATE recommender.user_profiles, recommender.popular_cache, recommender.item_model;
VACUUM ANALYZE;
SQL
fi
T=$(q -c "SELECT t FROM eval_split")
ensure_item_model "$DB"   # the training period's (the copy's own model was emptied with the split)
log "evaluate: T = $T; computing the lists"
q <<SQL
SET recommender.as_of = '$T';
SET client_min_messages = warning;
DROP TABLE IF EXISTS eval_users, eval_lists;
CREATE TABLE eval_users AS
SELECT user_id, EXISTS (SELECT 1 FROM eval_train_items r WHERE r.user_id = u.user_id) AS has_history
  FROM (SELECT DISTINCT user_id FROM eval_test) u
 ORDER BY md5(user_id) LIMIT NULLIF($USERS, 0);
CREATE TABLE eval_lists (method text, mode text, user_id text, rank int, product_id bigint);
-- item popularity and basket counts of the training period
CREATE TEMP TABLE pop AS
SELECT product_id, sum(purchases) AS n FROM recommender.product_daily
 WHERE day > ('$T'::timestamptz - interval '30 days')::date AND day < '$T'::timestamptz::date
 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5000;
CREATE TEMP TABLE baskets AS
SELECT product_id, count(DISTINCT basket_key)::float8 AS n FROM recommender.interactions WHERE type = 'PURCHASE' GROUP BY 1;
CREATE UNIQUE INDEX ON baskets (product_id);
-- popularity
INSERT INTO eval_lists
SELECT 'popularity', 'all', u.user_id, row_number() OVER (PARTITION BY u.user_id ORDER BY p.n DESC, p.product_id), p.product_id
  FROM eval_users u CROSS JOIN (SELECT * FROM pop ORDER BY n DESC, product_id LIMIT 10) p;
INSERT INTO eval_lists
SELECT 'popularity', 'new', user_id, rk, product_id FROM (
  SELECT u.user_id, p.product_id, row_number() OVER (PARTITION BY u.user_id ORDER BY p.n DESC, p.product_id) AS rk
    FROM eval_users u CROSS JOIN (SELECT * FROM pop ORDER BY n DESC, product_id LIMIT 500) p
   WHERE NOT EXISTS (SELECT 1 FROM eval_train_items r WHERE r.user_id = u.user_id AND r.product_id = p.product_id)) s
 WHERE rk <= 10;
-- repeat purchases (all items only: by definition nothing new)
INSERT INTO eval_lists
SELECT 'repeat purchases', 'all', user_id, rk, product_id FROM (
  SELECT up.user_id, up.product_id, row_number() OVER (PARTITION BY up.user_id ORDER BY up.purchases DESC, up.last_at DESC, up.product_id) AS rk
    FROM recommender.user_products up JOIN eval_users u USING (user_id) WHERE up.purchases > 0) s
 WHERE rk <= 10;
-- item-kNN: co-occurrence cosine
CREATE TEMP TABLE knn AS
SELECT h.user_id, c.product_b AS product_id, sum(c.baskets / sqrt(ba.n * bb.n)) AS score
  FROM (SELECT user_id, product_id FROM (
          SELECT up.user_id, up.product_id, row_number() OVER (PARTITION BY up.user_id ORDER BY up.last_at DESC, up.product_id) AS rk
            FROM recommender.user_products up JOIN eval_users u USING (user_id) WHERE up.purchases > 0) r WHERE rk <= 50) h
  CROSS JOIN LATERAL (SELECT product_b, baskets FROM recommender.copurchase WHERE product_a = h.product_id
                       ORDER BY baskets DESC LIMIT 100) c
  JOIN baskets ba ON ba.product_id = h.product_id
  JOIN baskets bb ON bb.product_id = c.product_b
 GROUP BY 1, 2;
INSERT INTO eval_lists
SELECT 'item-kNN (co-occurrence)', 'all', user_id, rk, product_id FROM (
  SELECT user_id, product_id, row_number() OVER (PARTITION BY user_id ORDER BY score DESC, product_id) AS rk FROM knn) s
 WHERE rk <= 10;
INSERT INTO eval_lists
SELECT 'item-kNN (co-occurrence)', 'new', user_id, rk, product_id FROM (
  SELECT k.user_id, k.product_id, row_number() OVER (PARTITION BY k.user_id ORDER BY k.score DESC, k.product_id) AS rk
    FROM knn k WHERE NOT EXISTS (SELECT 1 FROM eval_train_items r WHERE r.user_id = k.user_id AND r.product_id = k.product_id)) s
 WHERE rk <= 10;
-- the extension, from fresh profiles: collaborative candidates cached by an earlier run with
-- other settings (decay_days) must not be reused
TRUNCATE recommender.user_profiles;
SELECT recommender.preload_models();
INSERT INTO eval_lists
SELECT 'recommender.homepage', 'all', u.user_id, h.position, h.product_id
  FROM eval_users u CROSS JOIN LATERAL recommender.homepage(u.user_id, 10) h;
SET recommender.enable_repurchase = off;
INSERT INTO eval_lists
SELECT 'recommender.homepage', 'new', u.user_id, h.position, h.product_id
  FROM eval_users u CROSS JOIN LATERAL recommender.homepage(u.user_id, 10) h
 WHERE NOT EXISTS (SELECT 1 FROM eval_train_items r WHERE r.user_id = u.user_id AND r.product_id = h.product_id);
SQL
log "evaluate: metrics"
out="${EVAL_OUT:-$RUN/evaluation.txt}"
q -P footer=off -A -F ' | ' <<'SQL' | tee "$out"
WITH rel AS (      -- relevant products per user and mode
  SELECT 'all' AS mode, t.user_id, t.product_id FROM eval_test t JOIN eval_users USING (user_id)
  UNION ALL
  SELECT 'new', t.user_id, t.product_id FROM eval_test t JOIN eval_users USING (user_id)
   WHERE NOT EXISTS (SELECT 1 FROM eval_train_items r WHERE r.user_id = t.user_id AND r.product_id = t.product_id)),
nrel AS (SELECT mode, user_id, count(*) AS n FROM rel GROUP BY 1, 2),
methods AS (SELECT DISTINCT method, mode FROM eval_lists),
per_user AS (
  SELECT m.method, m.mode, n.user_id, n.n,
         count(l.product_id) FILTER (WHERE r.product_id IS NOT NULL) AS hits,
         coalesce(sum(1 / log(2, l.rank + 1)) FILTER (WHERE r.product_id IS NOT NULL), 0) AS dcg,
         (SELECT sum(1 / log(2, g + 1)) FROM generate_series(1, least(n.n, 10)) g) AS idcg
    FROM methods m JOIN nrel n ON n.mode = m.mode
    LEFT JOIN eval_lists l ON l.method = m.method AND l.mode = m.mode AND l.user_id = n.user_id AND l.rank <= 10
    LEFT JOIN rel r ON r.mode = m.mode AND r.user_id = l.user_id AND r.product_id = l.product_id
   GROUP BY 1, 2, 3, 4)
SELECT * FROM (
SELECT CASE mode WHEN 'all' THEN 'all items' ELSE 'new to user' END AS items, method, count(*) AS users,
       round(avg((hits > 0)::int), 4) AS "HR@10",
       round(avg(hits::numeric / n), 4) AS "Recall@10",
       round(avg(dcg / idcg)::numeric, 4) AS "NDCG@10",
       -- standard errors of the three means over users
       round((stddev_samp((hits > 0)::int) / sqrt(count(*)))::numeric, 4) AS "SE HR",
       round((stddev_samp(hits::numeric / n) / sqrt(count(*)))::numeric, 4) AS "SE Recall",
       round((stddev_samp(dcg / idcg) / sqrt(count(*)))::numeric, 4) AS "SE NDCG"
  FROM per_user GROUP BY mode, method ORDER BY mode, "NDCG@10" DESC) m
UNION ALL
-- homepage minus each baseline, paired over the same households: the mean difference of NDCG@10
-- and of Recall@10 with their standard errors (a difference within 2 SE is noise)
SELECT CASE b.mode WHEN 'all' THEN 'all items' ELSE 'new to user' END,
       'homepage - ' || b.method, count(*), NULL,
       round(avg(h.hits::numeric / h.n - b.hits::numeric / b.n), 4),
       round(avg(h.dcg / h.idcg - b.dcg / b.idcg)::numeric, 4), NULL,
       round((stddev_samp(h.hits::numeric / h.n - b.hits::numeric / b.n) / sqrt(count(*)))::numeric, 4),
       round((stddev_samp(h.dcg / h.idcg - b.dcg / b.idcg) / sqrt(count(*)))::numeric, 4)
  FROM per_user h JOIN per_user b ON b.mode = h.mode AND b.user_id = h.user_id AND b.method <> h.method
 WHERE h.method = 'recommender.homepage'
 GROUP BY b.mode, b.method;
SQL
q -c "SELECT 'split: T = ' || (SELECT t FROM eval_split) || ', test users ' || count(*) || ' (' || count(*) FILTER (WHERE NOT has_history) || ' without training history), test purchases ' || (SELECT count(*) FROM eval_test t JOIN eval_users USING (user_id)) FROM eval_users" | tee -a "$out"
