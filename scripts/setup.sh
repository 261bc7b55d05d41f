#!/usr/bin/env bash
# Installs everything the extension needs on a fresh Debian 12 machine, as root.
# Idempotent: every step checks first and skips finished work.
#   Debian packages -> cargo-pgrx -> PostgreSQL majors -> pgrx init -> pgvector -> python venv -> model files
#   scripts/setup.sh [MAJOR ...]    the majors to prepare (default: $PG, i.e. 15)
source "$(dirname "$0")/lib.sh"
majors=("${@:-$PG}")

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages)"
mkdir -p "$RUN"

APT_PKGS=(libclang-dev clang sudo pkg-config libssl-dev gcc make unzip ca-certificates dpkg-dev)
if [ -z "$USER_PG_CONFIG" ] && [[ " ${majors[*]} " == *" 15 "* ]]; then
  APT_PKGS+=(postgresql-15 postgresql-15-cron postgresql-server-dev-15 postgresql-contrib)
fi
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's postgresql-common creates a "main" cluster on install; we run our own and leave it alone.

command -v cargo >/dev/null || die "cargo not found: this machine kind ships rustc/cargo 1.95 in ~/.cargo/bin"

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  log "cargo-pgrx $PGRX_VERSION: installing (3-6 minutes)"
  cargo install --locked cargo-pgrx --version "=$PGRX_VERSION"
fi

for m in "${majors[@]}"; do run_for "$m" "$(dirname "$0")/install-postgres.sh"; done

# pgrx learns every major present on the machine at once: rewriting its config rebuilds pgrx.
need_init=false
for m in "${majors[@]}"; do
  grep -qs "$(pg_config_of "$m")" "$HOME/.pgrx/config.toml" || need_init=true
done
if $need_init; then
  args=()
  for m in $PG_MAJORS; do
    c=$(major_var "$m" PG_CONFIG)
    [ -n "$USER_PG_CONFIG" ] && [ "$m" = "$PG" ] && continue
    [ -x "$c" ] && args+=("--pg$m" "$c")
  done
  [ -n "$USER_PG_CONFIG" ] && args+=("--pg$PG" "$USER_PG_CONFIG")
  log "cargo pgrx init ${args[*]}"
  cargo pgrx init "${args[@]}"
fi

for m in "${majors[@]}"; do
  run_for "$m" "$(dirname "$0")/install-pgvector.sh"
  run_for "$m" "$ROOT/models/materialize.sh"
  # The deterministic test cross-encoder goes to a model dir of its own: the product's model dir
  # gets a cross-encoder only when a user installs a real one. (Not into a user's own server.)
  [ -n "$USER_PG_CONFIG" ] && continue
  run_for "$m" env MODEL_DIR="$("$(pg_config_of "$m")" --sharedir)/recommender/test-models" \
    "$ROOT/models/materialize.sh" --test-cross-encoder
done
