#!/usr/bin/env bash
# `make bench`: the benchmark run on Complete Journey in full, with the peer service in the same
# run. Every step writes into bench/results/; the last one assembles BENCHMARKS.md's "Latest run"
# section from them (machine, date, commit, command, numbers). Not part of `make test`.
#   1. load Complete Journey through sync_products / INSERT / refresh_embeddings (skipped if loaded)
#   2. server-side latency of every function (bench/pipeline_bench.sh)
#   3. extension vs peer service on the same requests, + bulk embedding (bench/peer_bench.py)
#   4. first homepage call in a fresh backend, memory with both models (bench/first_call.sh)
#   5. pgbench: homepage at 1/2/4/8 clients, a mixed script (bench/concurrency.sh)
#   5b. catalogue growth: homepage at 10k / 30k / 92k products (bench/growth.sh)
#   6. offline evaluation (bench/evaluate.sh) and tuning on a validation split (bench/tune.sh);
#      MovieLens (bench/evaluate_movielens.sh, bench/tune_movielens.sh)
#   7. plots and the report
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
R="$ROOT/bench/results"
mkdir -p "$R"

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/bench/requirements.txt"

log "bench 1/7: Complete Journey"
bash bench/load_complete_journey.sh 2>&1 | tee "$RUN/load.txt"
# a store loaded before leaves load.txt to the run that loaded it
if grep -q -E 'cj: products|purchase lines|texts through the model: [1-9][0-9]{3,}' "$RUN/load.txt"; then
  cp "$RUN/load.txt" "$R/load.txt"
else
  log "bench 1/7: Complete Journey was loaded before: bench/results/load.txt keeps that run's timings"
fi
log "bench 2/7: server-side latency"
bash bench/pipeline_bench.sh 500 2>&1 | tee "$R/pipeline.txt"
log "bench 3/7: extension vs peer service"
"$VENV/bin/python" bench/peer_bench.py --calls 500 --out "$R/peer.json"
log "bench 4/7: first call, memory"
bash bench/first_call.sh
log "bench 5/7: concurrency"
bash bench/concurrency.sh 30
log "bench 5b/7: catalogue growth (10k / 30k / 92k products)"
bash bench/growth.sh
log "bench 6/7: offline evaluation, then tuning on a validation split"
bash bench/evaluate.sh
cp "$RUN/evaluation.txt" "$R/evaluation.txt"
bash bench/tune.sh
ML_OUT="$R/evaluation-movielens.txt" bash bench/evaluate_movielens.sh
bash bench/tune_movielens.sh
log "bench 7/7: plots and report"
"$VENV/bin/python" bench/plots.py "$R/peer.json" "$R/latency.png"
"$VENV/bin/python" bench/report.py "$R" BENCHMARKS.md
