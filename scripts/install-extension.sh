#!/usr/bin/env bash
# Builds and installs the extension (release) into PostgreSQL 15, unless the installed build is
# already this source tree's. `cargo pgrx test` overwrites the install with a test build, so
# scripts/test.sh removes the stamp afterwards.
source "$(dirname "$0")/lib.sh"

stamp="$RUN/installed-extension.sha256"
src_hash=$(cd "$ROOT" && cat Cargo.toml Cargo.lock recommender.control $(find src sql -type f | sort) | sha256sum | cut -d' ' -f1)
libdir=$("$PG_CONFIG" --pkglibdir)
if [ -f "$libdir/recommender.so" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$src_hash" ]; then
  exit 0
fi
log "extension: cargo pgrx install --release"
(cd "$ROOT" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
echo "$src_hash" > "$stamp"
# Tells callers (demo) that databases created from an older build should be recreated.
echo "$src_hash" > "$RUN/extension-build-id"
