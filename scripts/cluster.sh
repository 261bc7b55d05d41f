#!/usr/bin/env bash
# The project's own PostgreSQL 15 cluster: data in .run/pgdata, 127.0.0.1:$PGPORT (default 28815).
#   scripts/cluster.sh start|stop|status|psql [args]
source "$(dirname "$0")/lib.sh"

PGDATA_DIR=$(pgdata_dir)
PGLOG="$(dirname "$PGDATA_DIR")/postgres.log"
# RUST_BACKTRACE in the server's environment would put Rust backtraces into error DETAILs.
pgctl() { env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" "$@"; }

case "${1:-start}" in
  start)
    if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
      log "cluster: initdb $PGDATA_DIR"
      mkdir -p "$PGDATA_DIR"
      chown postgres:postgres "$PGDATA_DIR" "$(dirname "$PGDATA_DIR")"
      chmod 700 "$PGDATA_DIR"
      runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat "$ROOT/pgrx-config/postgresql.conf" >> "$PGDATA_DIR/postgresql.conf"
      echo "port = $PGPORT" >> "$PGDATA_DIR/postgresql.conf"
    fi
    if ! pgctl status >/dev/null 2>&1; then
      log "cluster: starting on 127.0.0.1:$PGPORT"
      touch "$PGLOG" && chown postgres:postgres "$PGLOG"
      pgctl -l "$PGLOG" -w -t 60 start >/dev/null || { tail -20 "$PGLOG"; die "PostgreSQL did not start"; }
    fi
    ;;
  stop)
    if [ -f "$PGDATA_DIR/PG_VERSION" ] && pgctl status >/dev/null 2>&1; then
      pgctl -m fast -w stop >/dev/null && log "cluster: stopped"
    fi
    ;;
  status) pgctl status ;;
  psql) shift; exec psql "$@" ;;
  *) die "usage: scripts/cluster.sh start|stop|status|psql" ;;
esac
