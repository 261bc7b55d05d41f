#!/usr/bin/env bash
# Tunes the pipeline's settings on a validation split carved out of the evaluation's training
# period (never on its test period): recommender_val = recommender_eval minus its last
# EVAL_TEST_DAYS days of training, evaluated on TUNE_USERS households per setting.
# Writes bench/results/tuning.txt (0.7.0's settings and figures, before the item model, are in
# tuning-0.7.0.txt). Run bench/evaluate.sh first.
source "$(dirname "$0")/../scripts/lib.sh"

export EVAL_SRC=recommender_eval EVAL_DB=recommender_val EVAL_USERS=${TUNE_USERS:-500}
out="$ROOT/bench/results/tuning.txt"
baselines=
mkdir -p "$(dirname "$out")"
echo "validation split of the training period; $EVAL_USERS households; NDCG@10 etc. per setting ($(date -u +%F))" >"$out"
while IFS='|' read -r label opts; do
  [ -n "$label" ] || continue
  log "tune: $label"
  PGOPTIONS="$opts" EVAL_OUT="$RUN/tune.txt" bash "$ROOT/bench/evaluate.sh" >/dev/null 2>&1 || die "evaluate failed for $label"
  grep "recommender.homepage" "$RUN/tune.txt" | awk -v l="$label" '{print l " | " $0}' | tee -a "$out"
  # the baselines do not depend on the setting: once, from the first run
  [ -n "$baselines" ] || baselines=$(grep -v "recommender.homepage\|homepage -\|^split" "$RUN/tune.txt" | sed 's/^/baselines (same split and households) | /')
done <<'EOF'
defaults (0.05/0.9/0.05, cap 3, rerank, repeat share 0.9, decay 90)|
0.1/0.8/0.1, cap 3, rerank|-c recommender.homepage_weight_content=0.1 -c recommender.homepage_weight_collaborative=0.8 -c recommender.homepage_weight_popularity=0.1
0.05/0.9/0.05, cap 3, no rerank|-c recommender.enable_rerank=off
0.05/0.9/0.05, cap 10, no rerank, repeat share 0.95|-c recommender.max_per_category=10 -c recommender.enable_rerank=off -c recommender.repeat_share=0.95
0.1/0.8/0.1, cap 10, no rerank, repeat share 0.95 (0.7.0's winner)|-c recommender.homepage_weight_content=0.1 -c recommender.homepage_weight_collaborative=0.8 -c recommender.homepage_weight_popularity=0.1 -c recommender.max_per_category=10 -c recommender.enable_rerank=off -c recommender.repeat_share=0.95
0/1/0, cap 10, no rerank, repeat share 0.95|-c recommender.homepage_weight_content=0 -c recommender.homepage_weight_collaborative=1 -c recommender.homepage_weight_popularity=0 -c recommender.max_per_category=10 -c recommender.enable_rerank=off -c recommender.repeat_share=0.95
EOF
echo "$baselines" | tee -a "$out"
grep -h "" "$RUN/tune.txt" | grep -v "recommender.homepage" | tail -1 | tee -a "$out"
