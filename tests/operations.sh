#!/usr/bin/env bash
# Layer 5 of `make test`: what needs a server of its own. A primary with recommender (the queue
# worker) and pg_cron in shared_preload_libraries, and a streaming hot standby of it made with
# pg_basebackup, both on loopback. Checks:
#   - the postmaster never maps ONNX Runtime; the worker runs as its own process;
#   - deferred mode: writes queue, the worker drains, vectors equal embed(text);
#   - SIGHUP reloads the worker's settings (same pid); a failing batch is recorded and the worker
#     goes on; a commit that queues work wakes it (a 10-minute naptime); SIGTERM stops it after
#     the batch in flight, losing nothing;
#   - a listed database without the extension: the worker calls none of the look-alikes of its
#     functions that the database's owner (no superuser) planted;
#   - pg_cron runs CALL recommender.process_queue() in a database without a worker;
#   - on the standby every read function answers, nothing writes, impression logging is a no-op
#     with a NOTICE, and writes get 25006.
# Prints "ok - ..." per check (counted by scripts/test.sh), exits non-zero at the first failure.
source "$(dirname "$0")/../scripts/lib.sh"

BASE="$(dirname "$(pgdata_dir)")/operations"
PRIMARY="$BASE/primary"
STANDBY="$BASE/standby"
PP=$((PGPORT + 1))
SP=$((PGPORT + 2))
LOGP="$BASE/primary.log"
LOGS="$BASE/standby.log"

stop_all() {
  for d in "$STANDBY" "$PRIMARY"; do
    [ -f "$d/postmaster.pid" ] && aux_pgctl -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
}
[ -n "${KEEP_OPERATIONS_CLUSTERS:-}" ] || trap stop_all EXIT
ok() { echo "ok - $*"; }
fail() {
  echo "not ok - $*"
  echo "--- primary log (tail)"; tail -30 "$LOGP" 2>/dev/null || true
  echo "--- standby log (tail)"; tail -15 "$LOGS" 2>/dev/null || true
  exit 1
}
# q PORT DB SQL: one value, unaligned, errors fatal
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3"; }
# wait_for SECONDS PORT DB SQL: until the query returns t
wait_for() {
  local deadline=$((SECONDS + $1))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(q "$2" "$3" "$4" 2>/dev/null)" = t ] && return 0
    sleep 0.3
  done
  return 1
}
worker_pid() { q "$PP" postgres "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'recommender queue worker' AND datname = 'ops_worker'"; }
# reloads MS: how many times the worker logged a reload to a naptime of MS ms
reloads() { grep -c "database \"ops_worker\" reloaded its configuration (naptime $1 ms)" "$LOGP" || true; }

stop_all
rm -rf "$BASE"
aux_cluster_init "$PRIMARY" "$PP" "ops_worker, ops_planted" ops_cron
touch "$LOGP" "$LOGS" && chown postgres:postgres "$LOGP" "$LOGS"
aux_pgctl -D "$PRIMARY" -l "$LOGP" -w -t 60 start >/dev/null || fail "primary did not start"

for db in ops_worker ops_cron; do
  q "$PP" postgres "CREATE DATABASE $db"
  q "$PP" "$db" "CREATE EXTENSION vector; CREATE EXTENSION recommender"
done
q "$PP" ops_cron "CREATE EXTENSION pg_cron"
# ops_planted is listed in worker_databases but has no recommender; its owner is no superuser and
# plants a look-alike of the worker's batch function (0.20.0: the worker calls only the
# extension's own functions). The worker is a superuser: run, the look-alike would make its
# owner one.
q "$PP" postgres "CREATE ROLE ops_attacker LOGIN"
q "$PP" postgres "CREATE DATABASE ops_planted OWNER ops_attacker"
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PP" -U ops_attacker -d ops_planted >/dev/null <<'SQL' || fail "ops_attacker planted its functions"
CREATE SCHEMA recommender;
CREATE TABLE public.planted_runs (ran_as name, fn text);
GRANT INSERT ON public.planted_runs TO PUBLIC;
CREATE FUNCTION public.planted_hit(fn text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.planted_runs VALUES (current_user, fn);
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE ops_attacker SUPERUSER;
    END IF;
END $$;
CREATE FUNCTION recommender._process_queue_batch(batch_size integer, OUT processed integer, OUT failed integer)
LANGUAGE plpgsql AS $$ BEGIN PERFORM public.planted_hit('_process_queue_batch'); processed := 0; failed := 0; END $$;
CREATE FUNCTION recommender._dequeue_homepages(n integer) RETURNS text[]
LANGUAGE plpgsql AS $$ BEGIN PERFORM public.planted_hit('_dequeue_homepages'); RETURN ARRAY['x']; END $$;
CREATE FUNCTION recommender._precompute_homepages(users text[], OUT processed integer, OUT failed integer)
LANGUAGE plpgsql AS $$ BEGIN PERFORM public.planted_hit('_precompute_homepages'); processed := 0; failed := 0; END $$;
CREATE FUNCTION recommender.prune_rerank_scores() RETURNS bigint
LANGUAGE plpgsql AS $$ BEGIN PERFORM public.planted_hit('prune_rerank_scores'); RETURN 0; END $$;
SQL

# --- processes -----------------------------------------------------------------------------
wait_for 40 "$PP" postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'recommender queue worker' AND datname = 'ops_worker'" \
  || fail "one queue worker connected to ops_worker"
ok "queue worker running in ops_worker (pid $(worker_pid))"
# the worker of ops_planted connects (within its restart interval) and runs for 25 naptimes
wait_for 40 "$PP" postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'recommender queue worker' AND datname = 'ops_planted'" \
  || fail "a queue worker connected to ops_planted"
sleep 5
[ "$(q "$PP" ops_planted "SELECT count(*) FROM public.planted_runs")" = 0 ] \
  && [ "$(q "$PP" postgres "SELECT rolsuper FROM pg_roles WHERE rolname = 'ops_attacker'")" = f ] \
  || fail "the worker never calls a look-alike in a database without the extension"
grep -q 'database "ops_planted" has no recommender >= 0.3.0 yet' "$LOGP" || fail "the ops_planted worker logged that it waits"
ok "the worker of a listed database without the extension runs none of its owner's look-alikes (waits for the extension)"

# pg_cron: a minute-granularity schedule (pg_cron 1.4); checked at the end, while the rest runs.
q "$PP" ops_cron "ALTER DATABASE ops_cron SET recommender.embedding_mode = 'deferred'"
q "$PP" ops_cron "INSERT INTO recommender.products (external_id, name, category, price)
                  SELECT 'cron-' || g, 'Cron product ' || g, 'Cron', g FROM generate_series(1, 40) g"
[ "$(q "$PP" ops_cron "SELECT count(*) FROM recommender.embedding_queue")" = 40 ] || fail "ops_cron: 40 products queued"
q "$PP" ops_cron "SELECT cron.schedule('recommender-queue', '* * * * *', 'CALL recommender.process_queue()')" >/dev/null

# --- the worker drains a deferred write ------------------------------------------------------
q "$PP" ops_worker "SET recommender.embedding_mode = deferred;
  INSERT INTO recommender.products (external_id, name, description, category, price, stock)
  SELECT 'w-' || g, 'Worker product ' || g, 'Made for the queue worker test, number ' || g,
         'Cat' || (g % 7), 5 + g % 40, CASE WHEN g % 10 = 0 THEN 0 ELSE 3 END
    FROM generate_series(1, 300) g"
queued=$(q "$PP" ops_worker "SELECT count(*) FROM recommender.embedding_queue")
[ "$queued" -gt 0 ] || fail "deferred insert queued products"
wait_for 120 "$PP" ops_worker "SELECT count(*) = 0 FROM recommender.embedding_queue" || fail "worker drained the queue"
[ "$(q "$PP" ops_worker "SELECT count(*) FROM recommender.staleness")" = 0 ] || fail "no stale products after the drain"
[ "$(q "$PP" ops_worker "SELECT count(*) FROM (SELECT * FROM recommender.products ORDER BY product_id LIMIT 40) p
      WHERE 1 - (p.embedding <=> recommender.embed(recommender.product_text(p.name, p.description, p.category, p.price::float8))) < 0.9999")" = 0 ] \
  || fail "worker-made vectors equal embed(text)"
ok "worker embedded $queued queued products; vectors equal embed(text)"
# the postmaster never loaded ONNX Runtime or the models; the worker did
pm=$(head -1 "$PRIMARY/postmaster.pid")
! grep -q onnxruntime "/proc/$pm/maps" || fail "postmaster has ONNX Runtime mapped"
grep -q onnxruntime "/proc/$(worker_pid)/maps" || fail "the worker has ONNX Runtime mapped"
ok "ONNX Runtime in the worker (pid $(worker_pid)), not in the postmaster (pid $pm)"

# --- SIGHUP ----------------------------------------------------------------------------------
pid=$(worker_pid)
for setting in "recommender.worker_naptime = 150" "recommender.queue_retry_seconds = 1" "recommender.queue_batch_size = 16"; do
  q "$PP" postgres "ALTER SYSTEM SET $setting"
done
q "$PP" postgres "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(reloads 150)" -ge 1 ] && break; sleep 0.2; done
[ "$(reloads 150)" -ge 1 ] || fail "worker logged the reload"
[ "$(worker_pid)" = "$pid" ] || fail "worker kept its pid across SIGHUP"
ok "SIGHUP: worker reloaded its settings, same pid"

# --- a failing batch ---------------------------------------------------------------------------
q "$PP" ops_worker "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
  BEGIN
    IF NEW.external_id = 'w-7' AND NEW.embedded_hash IS DISTINCT FROM OLD.embedded_hash THEN
      RAISE EXCEPTION 'w-7 is poisoned';
    END IF;
    RETURN NEW;
  END \$\$;
  CREATE TRIGGER refuse BEFORE UPDATE ON recommender.products FOR EACH ROW EXECUTE FUNCTION public.refuse();
  SET recommender.embedding_mode = deferred;
  UPDATE recommender.products SET name = name || ' v2' WHERE external_id IN ('w-5', 'w-6', 'w-7', 'w-8', 'w-9')"
wait_for 60 "$PP" ops_worker "SELECT count(*) = 1 AND bool_and(q.attempts >= 1 AND q.last_error = 'w-7 is poisoned')
                                FROM recommender.embedding_queue q" \
  || fail "the poisoned product stays queued with its error, the others are embedded"
[ "$(worker_pid)" = "$pid" ] || fail "worker survived the failing batch"
q "$PP" ops_worker "DROP TRIGGER refuse ON recommender.products"
wait_for 60 "$PP" ops_worker "SELECT count(*) = 0 FROM recommender.embedding_queue" || fail "the product is embedded once fixed"
ok "failing batch: recorded on its rows, the rest embedded, retried after the fix, same worker"

# --- homepages computed ahead (0.12.0) ---------------------------------------------------------
# The worker takes the cross-encoder (the test model) from the server's settings, at a reload.
ce="$("$PG_CONFIG" --sharedir)/recommender/test-models/cross-encoder"
q "$PP" postgres "ALTER SYSTEM SET recommender.cross_encoder_dir = '$ce'"
q "$PP" postgres "SELECT pg_reload_conf()" >/dev/null
sleep 1
q "$PP" ops_worker "SET recommender.precompute_homepage = on;
  SELECT recommender.track('ops-shopper', product_id, 'VIEW') FROM recommender.products WHERE external_id IN ('w-1', 'w-2')" >/dev/null
wait_for 60 "$PP" ops_worker "SELECT NOT EXISTS (SELECT FROM recommender.homepage_queue)
                                AND EXISTS (SELECT FROM recommender.user_profiles
                                             WHERE user_id = 'ops-shopper' AND interaction_count = 2)" \
  || fail "the worker computed the queued user's homepage"
[ "$(worker_pid)" = "$pid" ] || fail "same worker after the precompute"
pairs=$(q "$PP" ops_worker "SELECT count(*) FROM recommender.rerank_scores")
[ "$pairs" -gt 0 ] || fail "the worker's precompute stored the cross-encoder's pairs"
# the user's own call, in a new backend: the worker's profile and pairs, nothing scored again
[ "$(q "$PP" ops_worker "SELECT string_agg(DISTINCT reranker, ',') FROM recommender.homepage('ops-shopper', 10)")" = cross-encoder ] \
  || fail "the user's call reranked with the cross-encoder"
[ "$(q "$PP" ops_worker "SELECT count(*) FROM recommender.rerank_scores")" = "$pairs" ] \
  || fail "the user's call after the precompute stored no new pair (it scored none)"
ok "precompute: the worker computed the queued user's homepage ($pairs cross-encoder pairs shared); the user's call scored none"

# --- a warm start: queue_homepages() (0.22.0) --------------------------------------------------
# every shared pair gone (as after a new model): the users it queues are computed by the worker,
# and a user's call in a new backend then scores nothing; with the worker running, no warning
q "$PP" ops_worker "TRUNCATE recommender.rerank_scores"
out=$(psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PP" -U postgres -d ops_worker \
        -c "SELECT recommender.queue_homepages(NULL)" 2>&1) || fail "queue_homepages(): $out"
[ "$out" = 1 ] || fail "queue_homepages() queued the one user with interactions, without a warning: $out"
# one user queued: its pairs commit with its precompute (the dequeue commits before it)
wait_for 60 "$PP" ops_worker "SELECT NOT EXISTS (SELECT FROM recommender.homepage_queue)
                                AND EXISTS (SELECT FROM recommender.rerank_scores)" \
  || fail "the worker computed the homepage queue_homepages() queued and stored its pairs"
pairs=$(q "$PP" ops_worker "SELECT count(*) FROM recommender.rerank_scores")
[ "$(q "$PP" ops_worker "SELECT string_agg(DISTINCT reranker, ',') FROM recommender.homepage('ops-shopper', 10)")" = cross-encoder ] \
  && [ "$(q "$PP" ops_worker "SELECT count(*) FROM recommender.rerank_scores")" = "$pairs" ] \
  || fail "the user's call after the warm start scored no new pair"
[ "$(worker_pid)" = "$pid" ] || fail "same worker after the warm start"
ok "warm start: queue_homepages() queued the user, the worker computed its page ($pairs pairs shared); the user's call scored none"

# --- a rerank budget (0.27.0's library) -------------------------------------------------------
# every shared pair gone: a new backend (no cross-encoder loaded) with recommender.rerank_budget
# set, in a database the worker serves, loads no model however long the budget: the call answers
# without stage 3 and asks the worker for the user's page, from a read-only transaction (it
# writes nothing); the worker scores the pairs, and the next call reranks
q "$PP" ops_worker "TRUNCATE recommender.rerank_scores"
budget="SET recommender.rerank_budget = 60000; SELECT string_agg(DISTINCT reranker, ',') FROM recommender.homepage('ops-shopper', 10)"
[ "$(q "$PP" ops_worker "SET default_transaction_read_only = on; $budget")" = deferred ] \
  || fail "a new backend with a budget left the cross-encoder to the worker"
wait_for 60 "$PP" ops_worker "SELECT NOT EXISTS (SELECT FROM recommender.homepage_queue)
                                AND EXISTS (SELECT FROM recommender.rerank_scores)" \
  || fail "the worker computed the homepage the deferred call queued"
pairs=$(q "$PP" ops_worker "SELECT count(*) FROM recommender.rerank_scores")
[ "$(q "$PP" ops_worker "$budget")" = cross-encoder ] \
  && [ "$(q "$PP" ops_worker "SELECT count(*) FROM recommender.rerank_scores")" = "$pairs" ] \
  || fail "the call after the worker's precompute reranked within its budget, scoring nothing"
[ "$(worker_pid)" = "$pid" ] || fail "same worker after the deferred rerank"
ok "rerank budget: a new backend deferred the rerank and asked for the user's page from a read-only transaction, the worker scored its $pairs pairs, the next call reranked"

# --- woken at the commit that queues work, not at the naptime (0.14.0) ------------------------
q "$PP" postgres "ALTER SYSTEM SET recommender.worker_naptime = 600000"
q "$PP" postgres "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(reloads 600000)" -ge 1 ] && break; sleep 0.2; done
[ "$(reloads 600000)" -ge 1 ] || fail "worker logged the 10-minute naptime"
sleep 1   # the worker is waiting now: only a wake-up ends the wait before 10 minutes
t0=$(date +%s%N)
q "$PP" ops_worker "SET recommender.embedding_mode = deferred;
  UPDATE recommender.products SET name = name || ' (woken)' WHERE external_id = 'w-3'"
wait_for 30 "$PP" ops_worker "SELECT NOT EXISTS (SELECT FROM recommender.embedding_queue)" \
  || fail "the worker, woken at the commit, embedded the queued product (naptime 10 minutes)"
embed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
sleep 1
t0=$(date +%s%N)
q "$PP" ops_worker "SET recommender.precompute_homepage = on;
  SELECT recommender.track('ops-shopper-2', product_id, 'VIEW') FROM recommender.products WHERE external_id = 'w-4'" >/dev/null
wait_for 30 "$PP" ops_worker "SELECT NOT EXISTS (SELECT FROM recommender.homepage_queue)
                                AND EXISTS (SELECT FROM recommender.user_profiles WHERE user_id = 'ops-shopper-2')" \
  || fail "the worker, woken at the commit, computed the queued user's homepage (naptime 10 minutes)"
home_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# a rolled-back queueing: nothing to do, nothing breaks; the worker is still the same process
q "$PP" ops_worker "BEGIN; SET LOCAL recommender.embedding_mode = deferred;
  UPDATE recommender.products SET name = name || ' (rolled back)' WHERE external_id = 'w-3'; ROLLBACK"
[ "$(worker_pid)" = "$pid" ] || fail "same worker after the wake-ups"
before=$(reloads 150)
q "$PP" postgres "ALTER SYSTEM SET recommender.worker_naptime = 150"
q "$PP" postgres "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(reloads 150)" -gt "$before" ] && break; sleep 0.2; done
[ "$(reloads 150)" -gt "$before" ] || fail "worker back at a 150 ms naptime"
ok "woken at commit with a 10-minute naptime: queued product embedded $embed_ms ms, queued user's homepage computed $home_ms ms after the psql call that queued them"

# --- the membership check before each homepage function (0.20.0) -------------------------------
# In a database with the extension, a _dequeue_homepages or _precompute_homepages that is not a
# member of it (here: taken out by a superuser, its body replaced) is never called; queued users
# wait, and are computed once the member is back.
for fn in "_dequeue_homepages(integer)" "_precompute_homepages(text[])"; do
  def=$(q "$PP" ops_worker "SELECT pg_get_functiondef('recommender.$fn'::regprocedure)")
  q "$PP" ops_worker "CREATE TABLE IF NOT EXISTS public.outsider_runs (fn text);
    ALTER EXTENSION recommender DROP FUNCTION recommender.$fn"
  case "$fn" in
    _dequeue*) head="_dequeue_homepages(n integer) RETURNS text[]"
               body="INSERT INTO public.outsider_runs VALUES ('$fn'); RETURN '{}';" ;;
    *) head="_precompute_homepages(users text[], OUT processed integer, OUT failed integer)"
       body="INSERT INTO public.outsider_runs VALUES ('$fn'); processed := 0; failed := 0;" ;;
  esac
  q "$PP" ops_worker "CREATE OR REPLACE FUNCTION recommender.$head LANGUAGE plpgsql AS \$o\$ BEGIN $body END \$o\$" \
    || fail "replaced $fn with an outsider"
  q "$PP" ops_worker "INSERT INTO recommender.homepage_queue (user_id) VALUES ('ops-shopper')"
  sleep 3   # 20 naptimes
  [ "$(q "$PP" ops_worker "SELECT count(*) FROM public.outsider_runs")" = 0 ] \
    || fail "the worker called a $fn that is not the extension's"
  [ "$(q "$PP" ops_worker "SELECT count(*) FROM recommender.homepage_queue")" = 1 ] \
    || fail "the queued user waits while $fn is not the extension's"
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PP" -U postgres -d ops_worker >/dev/null <<SQL || fail "restored $fn"
$def;
ALTER EXTENSION recommender ADD FUNCTION recommender.$fn;
SQL
  wait_for 30 "$PP" ops_worker "SELECT NOT EXISTS (SELECT FROM recommender.homepage_queue)" \
    || fail "the queued user is computed once $fn is the extension's again"
done
[ "$(worker_pid)" = "$pid" ] || fail "same worker after the outsiders"
q "$PP" ops_worker "DROP TABLE public.outsider_runs"
ok "a _dequeue_homepages or _precompute_homepages outside the extension is never called; the queue waits for the member"

# --- SIGTERM in the middle of a drain ----------------------------------------------------------
q "$PP" ops_worker "SET recommender.embedding_mode = deferred;
  UPDATE recommender.products SET description = description || ' (SIGTERM round)'"
wait_for 60 "$PP" ops_worker "SELECT count(*) BETWEEN 1 AND 280 FROM recommender.embedding_queue" || fail "worker started on the drain"
pid=$(worker_pid)
t0=$(date +%s%N)
q "$PP" postgres "SELECT pg_terminate_backend($pid)" >/dev/null
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "worker stopped after SIGTERM"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q 'recommender: queue worker in database "ops_worker" stopping' "$LOGP" || fail "worker logged its stop"
left=$(q "$PP" ops_worker "SELECT count(*) FROM recommender.embedding_queue")
[ "$(q "$PP" ops_worker "SELECT count(*) FROM recommender.products p
      WHERE (p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash)
        AND NOT EXISTS (SELECT FROM recommender.embedding_queue q WHERE q.product_id = p.product_id)")" = 0 ] \
  || fail "every stale product is still queued after SIGTERM"
ok "SIGTERM: worker stopped in $ms ms after its batch; $left products still queued, none lost"
# a stopped worker is not restarted (exit 0); the server's next start brings it back
aux_pgctl -D "$PRIMARY" -m fast -w stop >/dev/null
aux_pgctl -D "$PRIMARY" -l "$LOGP" -w -t 60 start >/dev/null || fail "primary restarted"
wait_for 120 "$PP" ops_worker "SELECT count(*) = 0 FROM recommender.embedding_queue" || fail "worker finished the queue after the restart"
[ "$(q "$PP" ops_worker "SELECT count(*) FROM recommender.staleness")" = 0 ] || fail "nothing stale after the restart"
ok "after a restart the worker finished the remaining $left products"

# --- a hot standby ---------------------------------------------------------------------------
q "$PP" ops_worker "
  INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
  SELECT 'u' || (g % 20), (SELECT product_id FROM recommender.products ORDER BY product_id OFFSET (g * 7) % 300 LIMIT 1),
         'PURCHASE', 'b' || (g / 3), now() - make_interval(days => g % 25)
    FROM generate_series(1, 240) g;
  INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
  SELECT 'cart-user', product_id, 'CART_ADD', now() - interval '2 days' FROM recommender.products ORDER BY product_id LIMIT 2"
# the primary's popularity cache is filled (UNLOGGED: a standby cannot read it)
q "$PP" ops_worker "SELECT count(*) FROM recommender.homepage('nobody-yet', 5)" >/dev/null
runuser -u postgres -- "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PP" -U postgres -D "$STANDBY" -R -X stream -c fast \
  || fail "pg_basebackup"
echo "port = $SP" >> "$STANDBY/postgresql.conf"
aux_pgctl -D "$STANDBY" -l "$LOGS" -w -t 60 start >/dev/null || fail "standby did not start"
q "$PP" ops_worker "INSERT INTO recommender.interactions (user_id, product_id, type)
                    SELECT 'late-user', min(product_id), 'VIEW' FROM recommender.products"
wait_for 30 "$SP" ops_worker "SELECT pg_is_in_recovery() AND EXISTS (SELECT FROM recommender.interactions WHERE user_id = 'late-user')" \
  || fail "standby streaming and caught up"
[ "$(q "$SP" postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'recommender queue worker'")" = 0 ] \
  || fail "no queue worker on the standby"
ok "standby streaming from the primary, no queue worker there"

[ "$(q "$SP" ops_worker "SELECT count(*) FROM recommender.user_profiles WHERE user_id = 'u3'")" = 0 ] || fail "u3 has no cached profile"
out=$(psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SP" -U postgres -d ops_worker 2>&1 <<'SQL'
SELECT 'warmup ' || count(*) FROM recommender.warmup();
SELECT 'homepage ' || count(*) FROM recommender.homepage('u3', 10);
SELECT 'homepage_again ' || count(*) FROM recommender.homepage('u3', 10);
SELECT 'cold ' || count(*) FROM recommender.homepage('never-seen', 10);
SELECT 'similar ' || count(*) FROM recommender.similar_products((SELECT min(product_id) FROM recommender.products), 5);
SELECT 'cart_ids ' || count(*) FROM recommender.cart(ARRAY(SELECT product_id FROM recommender.products ORDER BY product_id LIMIT 2), 5);
SELECT 'cart_user ' || count(*) FROM recommender.cart('cart-user', 5);
SELECT 'fbt ' || count(*) FROM recommender.frequently_bought_together((SELECT product_id FROM recommender.interactions WHERE user_id = 'u3' LIMIT 1), 5);
SELECT 'rerank ' || count(*) FROM recommender.rerank('coffee', ARRAY['a coffee mug', 'a tea pot']);
SELECT 'embed ' || vector_dims(recommender.embed('on a standby'));
SET recommender.log_impressions = on;
SELECT 'json ' || jsonb_array_length(recommender.homepage_json('u3', 5)->'recommendations');
SELECT 'json_again ' || jsonb_array_length(recommender.homepage_json('u4', 5)->'recommendations');
SELECT 'abandoned ' || count(*) FROM recommender.abandoned_carts(interval '1 hour', 3);
SQL
) || fail "read functions on the standby: $out"
echo "$out" | grep -q '^homepage 10$' || fail "homepage on the standby: $out"
echo "$out" | grep -q '^homepage_again 10$' || fail "homepage again on the standby: $out"
echo "$out" | grep -q '^cold 10$' || fail "cold-start homepage on the standby: $out"
echo "$out" | grep -q '^json 5$' || fail "homepage_json with impression logging on the standby: $out"
echo "$out" | grep -q '^abandoned 1$' || fail "abandoned_carts on the standby: $out"
[ "$(grep -c 'impressions are not logged on a standby' <<<"$out")" = 1 ] || fail "one NOTICE per session for impression logging: $out"
ok "standby answers: $(echo "$out" | grep -v NOTICE | grep -v HINT | tr '\n' ',' | sed 's/,$//')"
ok "standby: impression logging is a no-op with one NOTICE per session"
for stmt in "SELECT recommender.track('u3', 1, 'VIEW')" "SELECT recommender.rebuild_user_profile('u3')" \
            "CALL recommender.process_queue()"; do
  code=$(psql -X -At -h 127.0.0.1 -p "$SP" -U postgres -d ops_worker -v VERBOSITY=verbose -c "$stmt" 2>&1 | grep -o 'ERROR:  [0-9A-Z]\{5\}' | head -1 || true)
  [ "$code" = "ERROR:  25006" ] || fail "$stmt on the standby gives 25006 (got '$code')"
done
ok "standby: track, rebuild_user_profile and process_queue give 25006 (read-only)"

# --- pg_cron ----------------------------------------------------------------------------------
wait_for 90 "$PP" ops_cron "SELECT count(*) = 0 FROM recommender.embedding_queue" || fail "pg_cron drained ops_cron's queue"
[ "$(q "$PP" ops_cron "SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded' AND command LIKE 'CALL recommender.process_queue()%'")" -ge 1 ] \
  || fail "pg_cron recorded a succeeded run"
[ "$(q "$PP" ops_cron "SELECT count(*) FROM recommender.staleness")" = 0 ] || fail "ops_cron: nothing stale"
ok "pg_cron ran CALL recommender.process_queue() and embedded 40 queued products"

stop_all
trap - EXIT
rm -rf "$BASE"
