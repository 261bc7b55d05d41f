#!/usr/bin/env bash
# Materialise and install the model files and libonnxruntime.so (see models/materialize.py).
#   models/materialize.sh                         the pinned all-MiniLM-L6-v2 encoder + ONNX Runtime
#   models/materialize.sh --from DIR --role cross-encoder   a user's own HF ONNX export
# Extra arguments go to materialize.py. Installs into PostgreSQL's share/lib dirs unless
# MODEL_DIR / LIB_DIR are set.
source "$(dirname "$0")/../scripts/lib.sh"

MODEL_DIR="${MODEL_DIR:-$("$PG_CONFIG" --sharedir)/recommender/models}"
LIB_DIR="${LIB_DIR:-$("$PG_CONFIG" --pkglibdir)/recommender}"

# A private venv with the pinned build tools; rebuilt only when requirements.txt changes.
req="$ROOT/models/requirements.txt"
stamp="$VENV/.requirements-sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "models: creating the build venv ($VENV)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

"$VENV/bin/python" "$ROOT/models/materialize.py" --model-dir "$MODEL_DIR" --lib-dir "$LIB_DIR" \
  --cache "$RUN/models" "$@"
