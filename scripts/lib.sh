# Shared helpers for the repo's scripts. Sourced, never run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"                       # everything generated locally; ignored by git
PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG="$PG_BIN/pg_config"
PGRX_VERSION=0.18.1
PGVECTOR_VERSION=0.8.0
PGVECTOR_ORIG_SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0
VENV="$RUN/venv"
export PATH="$HOME/.cargo/bin:$PATH"

# The demo/test cluster: its own port and data directory, loopback only.
export PGHOST=127.0.0.1
export PGPORT="${RECOMMENDER_PGPORT:-28815}"
export PGUSER=postgres

# The cluster's data directory: .run/pgdata, unless the postgres user cannot reach the checkout
# (e.g. a clone under /root), then a directory of its own under postgres' home.
pgdata_dir() {
  if runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    echo "$RUN/pgdata"
  else
    echo "/var/lib/postgresql/recommender-$(echo "$ROOT" | sha256sum | cut -c1-12)/pgdata"
  fi
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

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
