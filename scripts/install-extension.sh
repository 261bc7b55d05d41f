#!/usr/bin/env bash
# Builds and installs the extension (release) into PostgreSQL $PG, unless the installed build is
# already this source tree's. `cargo pgrx test` overwrites the install with a test build, so
# scripts/test.sh removes the stamp afterwards.
source "$(dirname "$0")/lib.sh"

stamp="$RUN/installed-extension$PG_SUFFIX.sha256"
src_hash=$(cd "$ROOT" && cat Cargo.toml Cargo.lock recommender.control $(find src sql crates -type f -not -path "*/target/*" | sort) | sha256sum | cut -d' ' -f1)
libdir=$("$PG_CONFIG" --pkglibdir)
if [ -f "$libdir/recommender.so" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$src_hash" ]; then
  exit 0
fi
log "extension: cargo pgrx package (release) for PostgreSQL $PG, then install"
(cd "$ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" >/dev/null)
# Copy each file beside its destination and rename it into place: a running backend keeps the
# library it mapped (a new inode), instead of seeing it rewritten under it.
pkg="$ROOT/target/release/recommender-pg$PG"
(cd "$pkg" && find . -type f) | while read -r f; do
  dst="/${f#./}"
  mkdir -p "$(dirname "$dst")"
  cp "$pkg/$f" "$dst.tmp.$$" && chmod 644 "$dst.tmp.$$" && mv -f "$dst.tmp.$$" "$dst"
done
# Released scripts: the base of an older version (sql/install/recommender--<old>.sql) lets
# `CREATE EXTENSION ... VERSION '<old>'` install it, and the upgrade scripts
# (sql/upgrade/recommender--<old>--<new>.sql) are what `ALTER EXTENSION UPDATE` runs.
sharedir=$("$PG_CONFIG" --sharedir)
for f in "$ROOT"/sql/install/recommender--*.sql "$ROOT"/sql/upgrade/recommender--*.sql; do
  dst="$sharedir/extension/$(basename "$f")"
  cp "$f" "$dst.tmp.$$" && chmod 644 "$dst.tmp.$$" && mv -f "$dst.tmp.$$" "$dst"
done
echo "$src_hash" > "$stamp"
# Tells callers (demo) that databases created from an older build should be recreated.
echo "$src_hash" > "$RUN/extension-build-id$PG_SUFFIX"
