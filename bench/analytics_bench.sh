#!/usr/bin/env bash
# `make bench-analytics`: how long the analytics read — recommendation_performance and
# abandoned_carts() — at a realistic volume. A copy of the demo store (make demo first) gets
# IMPRESSIONS logged impressions over 30 days (homepage_json responses of 10, i.e. requests of 10
# products), a click on 3 % of them, a purchase after 20 % of the clicks, and CARTS carts of which
# half are abandoned. Writes bench/results/analytics.txt.
#   bench/analytics_bench.sh [IMPRESSIONS] [CARTS]   (defaults 1000000, 5000)
source "$(dirname "$0")/../scripts/lib.sh"
IMPRESSIONS=${1:-1000000}
CARTS=${2:-5000}
DB=recommender_analytics
OUT="$ROOT/bench/results/analytics.txt"
mkdir -p "$ROOT/bench/results"

"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start
psql -XAtq -d recommender_demo -c "SELECT 1" >/dev/null 2>&1 || die "no recommender_demo database: run make demo first"
psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB TEMPLATE recommender_demo"
q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

log "analytics bench: $IMPRESSIONS impressions, clicks, purchases, $CARTS carts"
q <<SQL
SET client_min_messages = warning;
CREATE TEMP TABLE ids AS SELECT row_number() OVER (ORDER BY product_id) AS n, product_id, price FROM recommender.products;
-- requests of 10 products over the 30 days before 2018-01-01, users u0..u9999
INSERT INTO recommender.impressions (request_id, context, user_id, product_id, position, shown_at)
SELECT 'r' || (g / 10), (ARRAY['homepage', 'product', 'cart', 'frequently_bought_together'])[1 + (g / 10) % 4],
       'u' || ((g / 10) % 10000), i.product_id, 1 + g % 10,
       timestamptz '2018-01-01' - make_interval(secs => ((g / 10) * 7919) % (30 * 86400))
  FROM generate_series(0::bigint, $IMPRESSIONS - 1) g
  JOIN ids i ON i.n = 1 + (g * 7907) % (SELECT count(*) FROM ids);
-- a click on 3 % of the impressions, a purchase within 3 days after 20 % of the clicks
INSERT INTO recommender.interactions (user_id, product_id, type, request_id, position, occurred_at)
SELECT user_id, product_id, 'RECOMMENDATION_CLICK', request_id, position, shown_at + interval '1 minute'
  FROM recommender.impressions WHERE impression_id % 33 = 0;
INSERT INTO recommender.interactions (user_id, product_id, type, value, occurred_at)
SELECT i.user_id, i.product_id, 'PURCHASE', coalesce(p.price, 1), i.occurred_at + interval '2 days'
  FROM recommender.interactions i JOIN recommender.products p USING (product_id)
 WHERE i.type = 'RECOMMENDATION_CLICK' AND i.interaction_id % 5 = 0;
-- carts: two products each; every second cart bought afterwards
INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
SELECT 'cart-' || c, i.product_id, 'CART_ADD', timestamptz '2017-12-25' + make_interval(mins => c)
  FROM generate_series(1, $CARTS) c, LATERAL (SELECT product_id FROM ids WHERE n IN (1 + c % 500, 2 + c % 700)) i;
INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
SELECT 'cart-' || c, i.product_id, 'PURCHASE', timestamptz '2017-12-28'
  FROM generate_series(2, $CARTS, 2) c, LATERAL (SELECT product_id FROM ids WHERE n = 1 + c % 500) i;
ANALYZE;
SQL

clicks=$(q -c "SELECT count(*) FROM recommender.interactions WHERE type = 'RECOMMENDATION_CLICK'")
interactions=$(q -c "SELECT count(*) FROM recommender.interactions")
t=$(date +%s%N); rows=$(q -c "SELECT count(*) FROM recommender.recommendation_performance"); perf_all=$(ms "$t")
t=$(date +%s%N); q -c "SELECT * FROM recommender.recommendation_performance WHERE day >= '2017-12-25'" >/dev/null; perf_week=$(ms "$t")
totals=$(q -c "SELECT sum(impressions) || ' impressions, ' || sum(clicks) || ' clicks, ' || sum(conversions) || ' conversions, revenue ' || sum(attributed_revenue) FROM recommender.recommendation_performance")
t=$(date +%s%N); carts=$(q -c "SET recommender.as_of = '2018-01-01'" -c "SELECT count(*) FROM recommender.abandoned_carts(interval '1 day', 0)"); carts_ms=$(ms "$t")
t=$(date +%s%N); q -c "SET recommender.as_of = '2018-01-01'" -c "SELECT count(*) FROM recommender.abandoned_carts(interval '1 day', 5)" >/dev/null; carts_k_ms=$(ms "$t")

{
  echo "analytics bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) cores"
  echo "command: bench/analytics_bench.sh $IMPRESSIONS $CARTS (a copy of the demo store: $interactions interactions incl. $clicks clicks)"
  echo "recommendation_performance, all days: $rows rows in $perf_all ms ($totals)"
  echo "recommendation_performance, last 7 days: $perf_week ms"
  echo "abandoned_carts(1 day, k => 0): $carts carts in $carts_ms ms; with k => 5 cart recommendations each: $carts_k_ms ms"
} | tee "$OUT"
psql -XAtq -d postgres -c "DROP DATABASE $DB"
