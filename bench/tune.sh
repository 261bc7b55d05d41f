#!/usr/bin/env bash
# Tunes the pipeline's settings on a validation split carved out of the evaluation's training
# period (never on its test period): recommender_val = recommender_eval minus its last
# EVAL_TEST_DAYS days of training, evaluated on TUNE_USERS households per setting.
# Writes bench/results/tuning.txt. Run bench/evaluate.sh first.
source "$(dirname "$0")/../scripts/lib.sh"

export EVAL_SRC=recommender_eval EVAL_DB=recommender_val EVAL_USERS=${TUNE_USERS:-500}
out="$ROOT/bench/results/tuning.txt"
mkdir -p "$(dirname "$out")"
echo "validation split of the training period; $EVAL_USERS households; NDCG@10 etc. per setting ($(date -u +%F))" >"$out"
while IFS='|' read -r label opts; do
  [ -n "$label" ] || continue
  log "tune: $label"
  PGOPTIONS="$opts" EVAL_OUT="$RUN/tune.txt" bash "$ROOT/bench/evaluate.sh" >/dev/null 2>&1 || die "evaluate failed for $label"
  grep "recommender.homepage" "$RUN/tune.txt" | awk -v l="$label" '{print l " | " $0}' | tee -a "$out"
done <<'EOF'
defaults (0.5/0.3/0.2, cap 3)|
popularity-heavy (0.2/0.3/0.5)|-c recommender.weight_content=0.2 -c recommender.weight_collaborative=0.3 -c recommender.weight_popularity=0.5
collaborative-heavy (0.2/0.6/0.2)|-c recommender.weight_content=0.2 -c recommender.weight_collaborative=0.6 -c recommender.weight_popularity=0.2
collaborative-heavy, cap 10|-c recommender.weight_content=0.2 -c recommender.weight_collaborative=0.6 -c recommender.weight_popularity=0.2 -c recommender.max_per_category=10
popularity + collaborative (0.1/0.45/0.45), cap 10|-c recommender.weight_content=0.1 -c recommender.weight_collaborative=0.45 -c recommender.weight_popularity=0.45 -c recommender.max_per_category=10
collaborative-first (0.1/0.8/0.1), cap 10|-c recommender.weight_content=0.1 -c recommender.weight_collaborative=0.8 -c recommender.weight_popularity=0.1 -c recommender.max_per_category=10
collaborative-first (0.1/0.8/0.1), cap 10, no rerank|-c recommender.weight_content=0.1 -c recommender.weight_collaborative=0.8 -c recommender.weight_popularity=0.1 -c recommender.max_per_category=10 -c recommender.enable_rerank=off
EOF
grep -h "" "$RUN/tune.txt" | grep -v "recommender.homepage" | tail -1 | tee -a "$out"
