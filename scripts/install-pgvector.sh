#!/usr/bin/env bash
# pgvector 0.8.0 for PostgreSQL 15, built from Debian trixie's *source* package (bookworm has no package),
# unless a pgvector >= 0.8.0 is installed already; the other majors' builds bring their own.
# Uses a private apt configuration so the system's apt sources stay untouched.
source "$(dirname "$0")/lib.sh"

sharedir="$("$PG_CONFIG" --sharedir)"
# 16 and 18 come with pgvector built for them (0.8.5 and 0.8.6, in their wheels); trixie's 0.8.0
# predates PostgreSQL 18.
if [ "$PG" != 15 ]; then
  [ -f "$sharedir/extension/vector.control" ] && [ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ] \
    || die "PostgreSQL $PG has no pgvector in $sharedir: rerun scripts/install-postgres.sh"
  exit 0
fi
# A pgvector of this version or newer already there (the user's own) is kept, never downgraded.
installed=$(sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$sharedir/extension/vector.control" 2>/dev/null || true)
if [ -n "$installed" ] && [ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ] \
   && [ "$(printf '%s\n' "$PGVECTOR_VERSION" "$installed" | sort -V | head -1)" = "$PGVECTOR_VERSION" ]; then
  exit 0
fi

work="$RUN/pgvector"
mkdir -p "$work/lists/partial" "$work/src"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb-src [trusted=yes] $mirror trixie main" > "$work/sources.list"
APT_OPTS=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0")

orig="$work/src/pgvector_${PGVECTOR_VERSION}.orig.tar.gz"
if [ ! -f "$orig" ]; then
  log "pgvector: downloading Debian source package pgvector ($PGVECTOR_VERSION)"
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$work/src" && apt-get "${APT_OPTS[@]}" source --download-only -qq "pgvector=${PGVECTOR_VERSION}-1" \
     || apt-get "${APT_OPTS[@]}" source --download-only -qq pgvector)
fi
echo "$PGVECTOR_ORIG_SHA256  $orig" | sha256sum -c --quiet - || die "pgvector source checksum mismatch: $orig"

log "pgvector: building $PGVECTOR_VERSION"
rm -rf "$work/build" && mkdir -p "$work/build"
tar -xzf "$orig" -C "$work/build" --strip-components=1
make -s -C "$work/build" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s -C "$work/build" PG_CONFIG="$PG_CONFIG" install >/dev/null
log "pgvector: installed $PGVECTOR_VERSION into $sharedir/extension"
