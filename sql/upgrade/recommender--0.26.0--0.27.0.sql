-- recommender 0.26.0 -> 0.27.0: no SQL change; the release is its library's (README "Upgrades").
-- Released: never edit.
--   * recommender.rerank_budget (superuser setting, default 0: no limit): a recommendation
--     call whose cross-encoder pairs cannot be scored within that time of its start answers
--     without stage 3 (reranker 'deferred'); the pairs scored so far are kept, and a homepage
--     asks the queue worker (through shared memory) to compute its user's page. A backend that
--     has not loaded the cross-encoder leaves a homepage's pairs to the worker when one serves
--     the database.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.27.0'" to load this file. \quit
