-- recommender 0.25.0 -> 0.26.0: no SQL change; the release is its library's (README "Upgrades").
-- Released: never edit.
--   * The recommendation functions keep what they computed (profile, collaborative candidates,
--     the rerank query's embedding, the popularity sums) without waiting for another
--     transaction: a write that meets a row lock gives way after 10 ms and the call goes on
--     unstored. Before, a role that called homepage() in a transaction and left it open made
--     every other session's homepage() for that user (and, at a new clock day, for everyone)
--     wait for it.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.26.0'" to load this file. \quit
