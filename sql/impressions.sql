-- recommender, unit "impressions" (src/lib.rs wires the units and their order).
-- Impressions and recommendation performance.

-- What was shown, one row per product of a logged response (recommender.log_impressions, or
-- record_impressions() for the set-returning functions and other channels).
CREATE TABLE recommender.impressions (
    impression_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id    text NOT NULL,
    context       text NOT NULL CHECK (context <> '' AND length(context) <= 64),
    user_id       text,
    product_id    bigint NOT NULL,          -- no foreign key: history outlives the catalogue row
    position      integer NOT NULL,
    shown_at      timestamptz NOT NULL DEFAULT recommender.clock()
);
CREATE INDEX impressions_request ON recommender.impressions (request_id);
CREATE INDEX impressions_shown ON recommender.impressions (shown_at);
SELECT pg_catalog.pg_extension_config_dump('recommender.impressions', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.impressions_impression_id_seq', '');
-- clicks and purchases that carry a request id (the performance view starts from them)
CREATE INDEX interactions_request ON recommender.interactions (request_id) WHERE request_id IS NOT NULL;

-- Logs the products of one response, in order (position 1 first), and returns its request id
-- (a new uuid when request_id is NULL). SECURITY DEFINER: readers log what they show but cannot
-- read the log. On a standby or in a read-only transaction it logs nothing and says so once per
-- session (NOTICE): recommendations keep working there.
CREATE FUNCTION recommender.record_impressions(context text, user_id text, product_ids bigint[], request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid text := coalesce(record_impressions.request_id, gen_random_uuid()::text);
BEGIN
    IF record_impressions.context IS NULL OR record_impressions.context = '' OR length(record_impressions.context) > 64 THEN
        RAISE EXCEPTION 'recommender: context must be a non-empty text of at most 64 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The built-in contexts are homepage, product, cart, frequently_bought_together and email.';
    END IF;
    IF cardinality(product_ids) > recommender._max_array() THEN
        RAISE EXCEPTION 'recommender: at most % product ids per response, got %', recommender._max_array(), cardinality(product_ids)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean THEN
        IF current_setting('recommender_session.impressions_skipped', true) IS DISTINCT FROM 'on' THEN
            RAISE NOTICE 'recommender: impressions are not logged on a standby or in a read-only transaction'
                USING HINT = 'Recommendations are unaffected. Log impressions on the primary, or turn recommender.log_impressions off here.';
            PERFORM set_config('recommender_session.impressions_skipped', 'on', false);
        END IF;
        RETURN rid;
    END IF;
    INSERT INTO recommender.impressions (request_id, context, user_id, product_id, position)
    SELECT rid, record_impressions.context, record_impressions.user_id, u.id, u.n
      FROM unnest(product_ids) WITH ORDINALITY AS u(id, n)
     WHERE u.id IS NOT NULL;
    RETURN rid;
END
$$;
COMMENT ON FUNCTION recommender.record_impressions(text, text, bigint[], text) IS
    'Logs the products one response showed (in position order) under a request id, which it returns; a no-op with a NOTICE on a standby.';

-- Per day and context: what was shown, clicked and bought. A click is a RECOMMENDATION_CLICK
-- interaction carrying the response's request_id; its context is the logged request's, or
-- '(not logged)'. A conversion is a click followed, within recommender.attribution_days, by a
-- PURCHASE of the same product by the same user; each purchase is attributed to the latest such
-- click, and counts on that click's day with its value as revenue.
CREATE VIEW recommender.recommendation_performance WITH (security_barrier) AS
WITH req AS (
    SELECT i.request_id, pg_catalog.min(i.context) AS context
      FROM recommender.impressions i
     GROUP BY i.request_id
), shown AS (
    SELECT (i.shown_at AT TIME ZONE 'UTC')::date AS day, i.context,
           pg_catalog.count(DISTINCT i.request_id) AS requests, pg_catalog.count(*) AS impressions
      FROM recommender.impressions i
     GROUP BY 1, 2
), clicks AS (
    SELECT c.interaction_id, c.user_id, c.product_id, c.occurred_at,
           (c.occurred_at AT TIME ZONE 'UTC')::date AS day,
           coalesce(r.context, '(not logged)') AS context
      FROM recommender.interactions c
      LEFT JOIN req r ON r.request_id OPERATOR(pg_catalog.=) c.request_id
     WHERE c.request_id IS NOT NULL
       AND c.type OPERATOR(pg_catalog.=) 'RECOMMENDATION_CLICK'::recommender.interaction_type
), attributed AS (
    SELECT DISTINCT ON (p.interaction_id) k.interaction_id AS click_id, coalesce(p.value, 0) AS value
      FROM clicks k
      JOIN recommender.interactions p
        ON p.user_id OPERATOR(pg_catalog.=) k.user_id AND p.product_id OPERATOR(pg_catalog.=) k.product_id
       AND p.type OPERATOR(pg_catalog.=) 'PURCHASE'::recommender.interaction_type
       AND p.occurred_at OPERATOR(pg_catalog.>=) k.occurred_at
       AND p.occurred_at OPERATOR(pg_catalog.<) (k.occurred_at OPERATOR(pg_catalog.+)
           pg_catalog.make_interval(days => recommender._setting('recommender.attribution_days')::integer))
     ORDER BY p.interaction_id, k.occurred_at DESC, k.interaction_id DESC
), clicked AS (
    SELECT k.day, k.context, pg_catalog.count(*) AS clicks, pg_catalog.count(a.click_id) AS conversions,
           coalesce(pg_catalog.sum(a.revenue), 0) AS revenue
      FROM clicks k
      LEFT JOIN (SELECT click_id, pg_catalog.sum(value) AS revenue FROM attributed GROUP BY click_id) a
             ON a.click_id OPERATOR(pg_catalog.=) k.interaction_id
     GROUP BY 1, 2
)
SELECT coalesce(s.day, c.day)                                    AS day,
       coalesce(s.context, c.context)                            AS context,
       coalesce(s.requests, 0)                                   AS requests,
       coalesce(s.impressions, 0)                                AS impressions,
       coalesce(c.clicks, 0)                                     AS clicks,
       pg_catalog.round(c.clicks::numeric OPERATOR(pg_catalog./) nullif(s.impressions, 0), 4) AS ctr,
       coalesce(c.conversions, 0)                                AS conversions,
       pg_catalog.round(c.conversions::numeric OPERATOR(pg_catalog./) nullif(c.clicks, 0), 4) AS conversion_rate,
       coalesce(c.revenue, 0)                                    AS attributed_revenue
  FROM shown s
  FULL JOIN clicked c ON c.day OPERATOR(pg_catalog.=) s.day AND c.context OPERATOR(pg_catalog.=) s.context;
COMMENT ON VIEW recommender.recommendation_performance IS
    'Per day and context: requests, impressions, clicks, CTR, conversions (purchase of the clicked product within recommender.attribution_days), conversion rate, attributed revenue.';
