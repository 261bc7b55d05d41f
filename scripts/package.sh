#!/usr/bin/env bash
# `make package`: a Debian package per PostgreSQL major, for the layout of Debian's and the
# PostgreSQL project's (apt.postgresql.org) packages of PostgreSQL NN:
#   /usr/lib/postgresql/NN/lib/recommender.so, .../lib/recommender/libonnxruntime.so.1.32.0
#   /usr/share/postgresql/NN/extension/recommender.control, recommender--*.sql
#   /usr/share/postgresql/NN/recommender/models/ (all-MiniLM-L6-v2 as model.ort, manifest with sha256)
# The extension is built against this machine's PostgreSQL NN (scripts/install-extension.sh) and
# its files are taken from the directories that build installed into, so what the package holds
# is what make test tested. Output: dist/postgresql-NN-recommender_<version>-1_amd64.deb
#   scripts/package.sh [MAJOR ...]    default: $PG
source "$(dirname "$0")/lib.sh"
majors=("${@:-$PG}")
version=$(sed -nE 's/^version = "([^"]+)"/\1/p' "$ROOT/Cargo.toml" | head -1)
mkdir -p "$ROOT/dist"
for m in "${majors[@]}"; do
  run_for "$m" "$ROOT/scripts/setup.sh" "$m"
  run_for "$m" "$ROOT/scripts/install-extension.sh"
  cfg=$(pg_config_of "$m")
  lib=$("$cfg" --pkglibdir)
  share=$("$cfg" --sharedir)
  name="postgresql-$m-recommender"
  stage="$RUN/package/$name"
  rm -rf "$stage"
  mkdir -p "$stage/DEBIAN" "$stage/usr/lib/postgresql/$m/lib" "$stage/usr/share/postgresql/$m/extension" \
           "$stage/usr/share/postgresql/$m/recommender" "$stage/usr/share/doc/$name"
  cp "$lib/recommender.so" "$stage/usr/lib/postgresql/$m/lib/"
  cp -r "$lib/recommender" "$stage/usr/lib/postgresql/$m/lib/"
  cp "$share"/extension/recommender.control "$share"/extension/recommender--*.sql "$stage/usr/share/postgresql/$m/extension/"
  # The model as model.ort (memory-mapped, for the bundled ONNX Runtime) with its tokenizer and
  # manifest; not the pre-packed copy (model.packed.*: stamped with the building machine's CPU)
  # nor model.onnx (the loader prefers model.ort).
  (cd "$share/recommender" && find models -type f ! -name 'model.packed.*' ! -name model.onnx) |
    while read -r f; do install -D -m 644 "$share/recommender/$f" "$stage/usr/share/postgresql/$m/recommender/$f"; done
  cp "$ROOT/README.md" "$stage/usr/share/doc/$name/"
  size=$(du -sk "$stage/usr" | cut -f1)
  cat > "$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version-1
Architecture: amd64
Maintainer: recommender developers <recommender@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.28), libstdc++6
Recommends: postgresql-$m, postgresql-$m-pgvector
Section: database
Priority: optional
Description: e-commerce recommendations inside PostgreSQL $m
 The recommender extension: all-MiniLM-L6-v2 embeddings and an optional BERT
 cross-encoder run in the backend through ONNX Runtime (bundled), pgvector HNSW,
 hybrid scoring, business rules. CREATE EXTENSION recommender CASCADE (needs
 pgvector >= 0.8 in the same server).
CONTROL
  out="$ROOT/dist/${name}_${version}-1_amd64.deb"
  dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out" >/dev/null
  log "package: $out ($(du -h "$out" | cut -f1))"
done
