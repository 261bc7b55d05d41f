#!/usr/bin/env bash
# The PostgreSQL 15 package (scripts/package.sh) in a server that has never seen the build tree:
# everything install-extension.sh and the model script put into PostgreSQL 15's directories is
# removed, the .deb is installed with dpkg, and a fresh cluster of its own creates the extension,
# embeds, syncs and recommends. Then the package is removed (its files must go with it) and the
# development install is restored. Prints "ok - ..." per check.
source "$(dirname "$0")/../scripts/lib.sh"
[ "$PG" = 15 ] || die "tests/package.sh tests the PostgreSQL 15 package"
cd "$ROOT"
fail() { echo "not ok - $*"; exit 1; }
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; else fail "$what"; fi; }

# make install into a user's PostgreSQL 15 keeps the pgvector it has when that is 0.8.0 or newer
# (a pg_config of our own pointing at a scratch directory; nothing is built or fetched).
fake="$RUN/fake-pg15"
rm -rf "$fake" && mkdir -p "$fake/bin" "$fake/share/extension" "$fake/lib"
printf '#!/bin/sh\ncase "$1" in --version) echo "PostgreSQL 15.99";; --sharedir) echo %s/share;; --pkglibdir) echo %s/lib;; --bindir) echo %s/bin;; esac\n' \
  "$fake" "$fake" "$fake" > "$fake/bin/pg_config"
chmod +x "$fake/bin/pg_config"
echo "default_version = '0.8.1'" > "$fake/share/extension/vector.control"
: > "$fake/lib/vector.so"
check "install-pgvector keeps a user's newer pgvector (0.8.1)" \
  env -u PG PG_CONFIG="$fake/bin/pg_config" bash "$ROOT/scripts/install-pgvector.sh"
check "... unchanged" grep -q "default_version = '0.8.1'" "$fake/share/extension/vector.control"
rm -rf "$fake"

"$ROOT/scripts/package.sh" 15
version=$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -1)
deb="$ROOT/dist/postgresql-15-recommender_${version}-1_amd64.deb"
check "package built ($(du -h "$deb" | cut -f1))" test -s "$deb"

lib=$("$PG_CONFIG" --pkglibdir)
share=$("$PG_CONFIG" --sharedir)
"$ROOT/scripts/cluster.sh" stop
rm -rf "$lib/recommender.so" "$lib/recommender" "$share/recommender" "$share"/extension/recommender*
rm -f "$RUN/installed-extension.sha256"
restore() {
  dpkg -r postgresql-15-recommender >/dev/null 2>&1 || true
  "$ROOT/scripts/setup.sh" 15 >/dev/null
  "$ROOT/scripts/install-extension.sh"
}
trap restore EXIT

dpkg -i "$deb" >/dev/null
check "dpkg -i installed the extension, ONNX Runtime and the models" \
  test -f "$lib/recommender.so" -a -f "$lib/recommender/libonnxruntime.so.1.32.0" \
       -a -f "$share/extension/recommender.control" -a -f "$share/recommender/models/manifest.json"

dir=$(dirname "$(pgdata_dir)")/package-test
port=$((PGPORT + 4))
rm -rf "$dir" && mkdir -p "$dir" && chown postgres:postgres "$dir"
runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n" "$port" >> "$dir/data/postgresql.conf"
aux_pgctl -D "$dir/data" -l "$dir/log" -w start >/dev/null
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
q -c "CREATE EXTENSION recommender CASCADE"
check "CREATE EXTENSION recommender CASCADE ($(q -c "SELECT extversion FROM pg_extension WHERE extname = 'recommender'"))" \
  test "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'recommender'")" = "$version"
check "embed() runs the packaged model (384 dimensions)" \
  test "$(q -c "SELECT vector_dims(recommender.embed('Dark roast coffee beans'))")" = 384
q <<'SQL' >/dev/null
CREATE TABLE shop (id int PRIMARY KEY, name text, category text);
INSERT INTO shop VALUES (1, 'Espresso beans', 'Coffee'), (2, 'Filter coffee', 'Coffee'), (3, 'Green tea', 'Tea'),
                        (4, 'Milk frother', 'Kitchen');
SET client_min_messages = warning;
SELECT recommender.sync_products('shop', category_column => 'category');
CALL recommender.refresh_embeddings();
INSERT INTO recommender.interactions (user_id, product_id, type, basket_id)
SELECT 'pia', product_id, 'PURCHASE', 'b1' FROM recommender.products WHERE external_id IN ('1', '4');
SQL
check "similar_products from the package" \
  test "$(q -c "SELECT count(*) FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = '1'), 2)")" = 2
check "homepage from the package" test "$(q -c "SELECT count(*) FROM recommender.homepage('pia', 3)")" -ge 1
aux_pgctl -D "$dir/data" -m fast -w stop >/dev/null
rm -rf "$dir"

dpkg -r postgresql-15-recommender >/dev/null
check "dpkg -r removed every file it installed" \
  test ! -e "$lib/recommender.so" -a ! -e "$lib/recommender" -a ! -e "$share/recommender" -a ! -e "$share/extension/recommender.control"
