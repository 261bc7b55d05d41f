-- The latest recommender.tune() run, setting by setting, rounded (bench/tune.sh, bench/tune_movielens.sh).
SELECT setting, in_force, tuned, round(ndcg_in_force::numeric, 4) AS ndcg_in_force, round(ndcg_in_force_se::numeric, 4) AS se,
       round(ndcg_tuned::numeric, 4) AS ndcg_tuned, round(ndcg_tuned_se::numeric, 4) AS se,
       round(gain::numeric, 4) AS gain, round(gain_se::numeric, 4) AS gain_se, users FROM recommender.tuning;
