#!/usr/bin/env bash
# The SQL regression suite (tests/schedule, tests/sql, tests/expected) on the project's cluster of
# PostgreSQL $PG, with that major's pg_regress. A major whose output differs legitimately has an
# alternative expected file (tests/expected/NAME_1.out), as pg_regress allows.
#   scripts/regress.sh [TEST ...]    default: the whole schedule
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start
OUT="$RUN/regress$PG_SUFFIX"
rm -rf "$OUT" && mkdir -p "$OUT"
tests=${*:-$(grep -v '^#' tests/schedule | xargs)}
set +e
"$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
  --bindir="$PG_BIN" --inputdir="$ROOT/tests" --outputdir="$OUT" \
  --host=127.0.0.1 --port="$PGPORT" --user=postgres --dbname=recommender_regress $tests
rc=$?
set -e
if [ "$rc" != 0 ]; then
  [ -f "$OUT/regression.diffs" ] && head -200 "$OUT/regression.diffs"
  die "SQL regression suite failed on PostgreSQL $PG (diffs: $OUT/regression.diffs)"
fi
