#!/usr/bin/env bash
# `make test`: the whole suite on real PostgreSQL + pgvector + the real MiniLM weights.
#   0. lints: cargo fmt --check, cargo clippy -D warnings
#   1. pure-Rust unit tests of crates/core (no Postgres, no pg_config)
#   2. cargo pgrx test pg15 (#[pg_test]s inside a backend)
#   3. the SQL regression suite (tests/sql, tests/expected) against the project's own cluster,
#      including an install of the previous release and ALTER EXTENSION UPDATE
#   4. fault tests (tests/faults.sh): model files broken and restored, cancel, timeouts, kill -9,
#      restart
#   5. operations tests (tests/operations.sh): a server of its own with the queue worker and
#      pg_cron preloaded, SIGHUP/SIGTERM, and a streaming hot standby
#      and the package: make package's .deb for 15, installed with dpkg into a fresh cluster
#   6. every other major (PG_MAJORS in scripts/lib.sh: 16, 18): layers 2 and 3 on it
# `make test PG=16` (or 18, 15) runs the lints, layer 1 and that major's layers only (all five on 15).
if [ -n "${PG:-}" ]; then only=$PG; else only=""; fi
source "$(dirname "$0")/lib.sh"

if [ -n "$only" ]; then majors=("$only"); else read -r -a majors <<<"$PG_MAJORS"; fi
"$ROOT/scripts/setup.sh" "${majors[@]}"
mkdir -p "$RUN"
LOG="$RUN/test.log"
: > "$LOG"
cd "$ROOT"
declare -A took

# Lints first: formatting, and clippy with warnings as errors on every target of each feature
# set the tests build (allowances carry their reason where they are declared).
log "lints: cargo fmt --check, cargo clippy -D warnings (features: $(printf 'pg%s ' "${majors[@]}"))"
cargo fmt --all -- --check 2>&1 | tee -a "$LOG" || die "cargo fmt --check failed: run cargo fmt"
cargo clippy -p recommender-core --all-targets -- -D warnings 2>&1 | tee -a "$LOG" \
  || die "cargo clippy reports warnings (recommender-core)"
for m in "${majors[@]}"; do
  cargo clippy --all-targets --no-default-features --features "pg$m pg_test" -- -D warnings 2>&1 | tee -a "$LOG" \
    || die "cargo clippy reports warnings (features pg$m pg_test)"
done

log "test layer 1/5: pure-Rust unit tests (cargo test -p recommender-core)"
cargo test -p recommender-core 2>&1 | tee -a "$LOG"
unit=$(grep -E '^test result: ok\.' "$LOG" | head -1 | sed -E 's/.* ([0-9]+) passed.*/\1/')

# Released SQL scripts are never edited: they are what existing installations were created or
# updated with.
sha256sum --quiet -c tests/released-sql.sha256 || die "a released SQL script was edited (tests/released-sql.sha256)"

pg=0
reg=0
for m in "${majors[@]}"; do
  t0=$SECONDS
  log "test layer 2/5: cargo pgrx test pg$m"
  PG=$m "$ROOT/scripts/pgrx-test.sh" 2>&1 | tee "$RUN/pgrx-test-pg$m.log" | tee -a "$LOG"
  n=$(grep -E '^test result: ok\.' "$RUN/pgrx-test-pg$m.log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s += $1} END {print s + 0}')
  pg=$((pg + n))

  log "test layer 3/5: SQL regression suite on PostgreSQL $m"
  PG=$m "$ROOT/scripts/regress.sh" 2>&1 | tee -a "$LOG"
  reg=$((reg + $(grep -v '^#' tests/schedule | wc -w)))

  if [ "$m" = 15 ]; then
    log "test layer 4/5: fault tests"
    PG=15 bash "$ROOT/tests/faults.sh" 2>&1 | tee -a "$LOG"

    log "test layer 5/5: operations tests (queue worker, pg_cron, hot standby)"
    PG=15 bash "$ROOT/tests/operations.sh" 2>&1 | tee -a "$LOG"

    log "package: the PostgreSQL 15 .deb in a server that has never seen the build tree"
    PG=15 bash "$ROOT/tests/package.sh" 2>&1 | tee -a "$LOG"
  else
    # free the memory of this major's cluster for the next one
    PG=$m "$ROOT/scripts/cluster.sh" stop
  fi
  took[$m]=$((SECONDS - t0))
done

checks=$(grep -c '^ok - ' "$LOG" || true)
echo
for m in "${majors[@]}"; do echo "PostgreSQL $m: layers 2-$([ "$m" = 15 ] && echo 5 || echo 3) in ${took[$m]} s"; done
echo "layers: unit $unit, pg_test $pg, regression $reg, fault, operations and package checks $checks"
echo "total: $((unit + pg + reg + checks)) passed, 0 failed"
