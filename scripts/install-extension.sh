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
pkg="$ROOT/target/release/recommender-pg$PG"
# A fresh staging tree: one left by a build of another version holds that version's script.
rm -rf "$pkg"
(cd "$ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" >/dev/null)
# Copy each file beside its destination and rename it into place: a running backend keeps the
# library it mapped (a new inode), instead of seeing it rewritten under it.
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
# Only the scripts this tree ships: one left by a build of another version would offer a version,
# or an update path, that nothing tested (make package takes its files from here too).
for f in "$sharedir"/extension/recommender--*.sql; do
  b=$(basename "$f")
  [ -f "$pkg$sharedir/extension/$b" ] || [ -f "$ROOT/sql/install/$b" ] || [ -f "$ROOT/sql/upgrade/$b" ] \
    || { log "extension: removing $f (not shipped by this tree)"; rm -f "$f"; }
done
echo "$src_hash" > "$stamp"
# Tells callers (demo) that databases created from an older build should be recreated.
echo "$src_hash" > "$RUN/extension-build-id$PG_SUFFIX"
