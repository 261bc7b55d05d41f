#!/usr/bin/env bash
# `make test`: the whole suite on a real PostgreSQL 15 + pgvector + the real MiniLM weights.
#   0. lints: cargo fmt --check, cargo clippy -D warnings
#   1. pure-Rust unit tests of src/core (no Postgres)
#   2. cargo pgrx test pg15 (#[pg_test]s inside a backend)
#   3. the SQL regression suite (tests/sql, tests/expected) against the project's own cluster,
#      including an install of the previous release and ALTER EXTENSION UPDATE
#   4. fault tests (tests/faults.sh): model files broken and restored, cancel, timeouts, kill -9,
#      restart
#   5. operations tests (tests/operations.sh): a server of its own with the queue worker and
#      pg_cron preloaded, SIGHUP/SIGTERM, and a streaming hot standby
source "$(dirname "$0")/lib.sh"

"$ROOT/scripts/setup.sh"
mkdir -p "$RUN"
LOG="$RUN/test.log"
: > "$LOG"
cd "$ROOT"

# Lints first: formatting, and clippy with warnings as errors on every target of the feature
# set the tests build (allowances carry their reason where they are declared).
log "lints: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all -- --check 2>&1 | tee -a "$LOG" || die "cargo fmt --check failed: run cargo fmt"
cargo clippy --all-targets --features pg_test -- -D warnings 2>&1 | tee -a "$LOG" || die "cargo clippy reports warnings"

log "test layer 1/5: pure-Rust unit tests (cargo test --lib core)"
cargo test --lib core 2>&1 | tee -a "$LOG"

log "test layer 2/5: cargo pgrx test pg15"
# pgrx initdb's its own cluster here; it must belong to postgres and its path must stay short
# (the unix socket lives in it).
PGRX_DATA="/tmp/recommender-pgrx-test"
mkdir -p "$PGRX_DATA" && chown postgres:postgres "$PGRX_DATA"
# `cargo pgrx test` installs its test build over the release one: forget the release stamp, and
# stop the project's cluster so none of its backends has the library mapped while it is replaced.
rm -f "$RUN/installed-extension.sha256"
"$ROOT/scripts/cluster.sh" stop
cargo pgrx test pg15 --runas postgres --pgdata "$PGRX_DATA" 2>&1 | tee -a "$LOG"

log "test layer 3/5: SQL regression suite"
# Released SQL scripts are never edited: they are what existing installations were created or
# updated with.
(cd "$ROOT" && sha256sum --quiet -c tests/released-sql.sha256) || die "a released SQL script was edited (tests/released-sql.sha256)"
"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start
OUT="$RUN/regress"
rm -rf "$OUT" && mkdir -p "$OUT"
tests=$(grep -v '^#' tests/schedule | xargs)
set +e
/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress \
  --bindir="$PG_BIN" --inputdir="$ROOT/tests" --outputdir="$OUT" \
  --host=127.0.0.1 --port="$PGPORT" --user=postgres --dbname=recommender_regress $tests 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
  [ -f "$OUT/regression.diffs" ] && head -200 "$OUT/regression.diffs"
  die "SQL regression suite failed (diffs: $OUT/regression.diffs)"
fi

log "test layer 4/5: fault tests"
bash "$ROOT/tests/faults.sh" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || die "fault tests failed"

log "test layer 5/5: operations tests (queue worker, pg_cron, hot standby)"
bash "$ROOT/tests/operations.sh" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || die "operations tests failed"

# the first cargo summary is layer 1; the rest (lib + doc tests) are layer 2
counts=$(grep -E '^test result: ok\.' "$LOG" | sed -E 's/.* ([0-9]+) passed.*/\1/')
unit=$(head -1 <<<"$counts")
pg=$(tail -n +2 <<<"$counts" | awk '{s += $1} END {print s + 0}')
reg=$(wc -w <<<"$tests")
checks=$(grep -c '^ok - ' "$LOG")
echo
echo "layers: unit $unit, pg_test $pg, regression $reg, fault and operations checks $checks"
echo "total: $((unit + pg + reg + checks)) passed, 0 failed"
