#!/usr/bin/env bash
# The #[pg_test]s inside a backend of PostgreSQL $PG: cargo pgrx test pg$PG.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# pgrx initdb's its own cluster here; it must belong to postgres and its path must stay short
# (the unix socket lives in it).
PGRX_DATA="/tmp/recommender-pgrx-test$PG_SUFFIX"
mkdir -p "$PGRX_DATA" && chown postgres:postgres "$PGRX_DATA"
# `cargo pgrx test` installs its test build over the release one: forget the release stamp, and
# stop the project's cluster so none of its backends has the library mapped while it is replaced.
rm -f "$RUN/installed-extension$PG_SUFFIX.sha256"
"$ROOT/scripts/cluster.sh" stop
cargo pgrx test "pg$PG" --runas postgres --pgdata "$PGRX_DATA"
