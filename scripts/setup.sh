#!/usr/bin/env bash
# Installs everything the extension needs on a fresh Debian 12 machine, as root.
# Idempotent: every step checks first and skips finished work.
#   Debian packages -> cargo-pgrx -> pgrx init -> pgvector -> python venv -> model files
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages)"
mkdir -p "$RUN"

APT_PKGS=(postgresql-15 postgresql-15-cron postgresql-server-dev-15 postgresql-contrib libclang-dev clang sudo pkg-config
          libssl-dev gcc make unzip ca-certificates dpkg-dev)
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

if [ ! -f "$HOME/.pgrx/config.toml" ] || ! grep -q "$PG_CONFIG" "$HOME/.pgrx/config.toml"; then
  log "cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG"
fi

"$(dirname "$0")/install-pgvector.sh"
"$ROOT/models/materialize.sh"
# The deterministic test cross-encoder goes to a model dir of its own: the product's model dir
# gets a cross-encoder only when a user installs a real one.
MODEL_DIR="$("$PG_CONFIG" --sharedir)/recommender/test-models" "$ROOT/models/materialize.sh" --test-cross-encoder
