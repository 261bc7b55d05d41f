#!/usr/bin/env bash
# `make bench-majors`: the same homepage workload on every PostgreSQL major make test covers, so
# a regression on a newer major shows. For each major: make demo's store (the electronics
# catalogue and the first 60 Complete Journey households, embedded), then homepage(household, 12)
# for the 60 households at the dataset's clock: one warm-up round, then 5 timed rounds, timed
# inside the server (clock_timestamp around each call in one PL/pgSQL loop). Prints one line per
# major: p50 / p95 / p99 in ms.
source "$(dirname "$0")/../scripts/lib.sh"
ROUNDS=${ROUNDS:-5}
for m in $PG_MAJORS; do
  log "bench-majors: PostgreSQL $m: make demo's store"
  PG=$m bash "$ROOT/scripts/demo.sh" >/dev/null
  port=$(major_var "$m" PGPORT)
  line=$(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d recommender_demo <<SQL
SET client_min_messages = warning;
SET recommender.as_of = '2018-01-01';
CREATE TEMP TABLE households AS
SELECT DISTINCT user_id FROM recommender.interactions WHERE user_id LIKE 'household-%';
CREATE TEMP TABLE timings (ms double precision);
SELECT count(*) FROM households h, LATERAL recommender.homepage(h.user_id, 12) r \\g /dev/null
DO \$\$
DECLARE
    u text;
    t0 timestamptz;
BEGIN
    FOR r IN 1..$ROUNDS LOOP
        FOR u IN SELECT user_id FROM households ORDER BY user_id LOOP
            t0 := clock_timestamp();
            PERFORM count(*) FROM recommender.homepage(u, 12);
            INSERT INTO timings VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
        END LOOP;
    END LOOP;
END
\$\$;
SELECT format('%s calls, reranker %s: p50 %s / p95 %s / p99 %s ms', count(*),
              (SELECT reranker FROM recommender.homepage((SELECT min(user_id) FROM households), 1)),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
              round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1))
  FROM timings;
SQL
)
  echo "PostgreSQL $("$(major_var "$m" PG_CONFIG)" --version | cut -d' ' -f2): $line"
  PG=$m bash "$ROOT/scripts/cluster.sh" stop
done
