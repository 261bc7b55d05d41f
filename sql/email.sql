-- recommender, unit "email" (src/lib.rs wires the units and their order).
-- Cart abandonment and email audiences.

CREATE TABLE recommender.user_email_preferences (
    user_id    text PRIMARY KEY CHECK (user_id <> ''),
    opted_out  boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recommender.user_email_preferences IS
    'Per user: opted out of marketing email. Opted-out users are never in abandoned_carts() and cannot be sent to.';

CREATE TABLE recommender.email_campaigns (
    campaign_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL DEFAULT 'cart_abandonment',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One email sent to one user: its products and the request id its links carry. Each send is
-- also logged as impressions (context 'email'), so its clicks and conversions appear in
-- recommendation_performance.
CREATE TABLE recommender.email_sends (
    send_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES recommender.email_campaigns ON DELETE CASCADE,
    user_id     text NOT NULL CHECK (user_id <> ''),
    request_id  text NOT NULL UNIQUE,
    product_ids bigint[] NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT recommender.clock()
);
CREATE INDEX email_sends_user ON recommender.email_sends (user_id, sent_at);
SELECT pg_catalog.pg_extension_config_dump('recommender.user_email_preferences', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_campaigns', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_campaigns_campaign_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_sends', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_sends_send_id_seq', '');
-- cart events per user (abandoned_carts)
CREATE INDEX interactions_cart ON recommender.interactions (user_id, occurred_at)
    WHERE type OPERATOR(pg_catalog.=) ANY (ARRAY['CART_ADD'::recommender.interaction_type,
                                               'CART_REMOVE'::recommender.interaction_type]);

-- Records one email of a campaign to a user and returns the request id for its links
-- (track(..., 'RECOMMENDATION_CLICK', request_id => ...)). Opted-out users: 22023, nothing recorded.
CREATE FUNCTION recommender.record_email_send(campaign_id bigint, user_id text, product_ids bigint[])
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rid text := gen_random_uuid()::text;
BEGIN
    IF record_email_send.campaign_id IS NULL OR record_email_send.user_id IS NULL OR record_email_send.product_ids IS NULL THEN
        RAISE EXCEPTION 'recommender: campaign_id, user_id and product_ids must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM recommender.email_campaigns c WHERE c.campaign_id = record_email_send.campaign_id) THEN
        RAISE EXCEPTION 'recommender: email campaign % does not exist', record_email_send.campaign_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'INSERT INTO recommender.email_campaigns (name) VALUES (...) RETURNING campaign_id.';
    END IF;
    IF EXISTS (SELECT FROM recommender.user_email_preferences e WHERE e.user_id = record_email_send.user_id AND e.opted_out) THEN
        RAISE EXCEPTION 'recommender: user % opted out of email', record_email_send.user_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'recommender.abandoned_carts() leaves opted-out users out.';
    END IF;
    INSERT INTO recommender.email_sends (campaign_id, user_id, request_id, product_ids)
    VALUES (record_email_send.campaign_id, record_email_send.user_id, rid, record_email_send.product_ids);
    PERFORM recommender.record_impressions('email', record_email_send.user_id, record_email_send.product_ids, rid);
    RETURN rid;
END
$$;
COMMENT ON FUNCTION recommender.record_email_send(bigint, text, bigint[]) IS
    'Records an email send (its products are logged as impressions, context email) and returns the request id its links carry.';

-- A user's cart at a time, the one definition cart(user_id, k) and abandoned_carts() share: the
-- products whose last cart event (CART_ADD, CART_REMOVE or PURCHASE of it) at or before `at` is
-- a CART_ADD, added no earlier than the user's last PURCHASE of anything (a checkout empties the
-- cart). Reads only the user's events since that purchase (index interactions_user).
CREATE FUNCTION recommender._cart(user_id text, at timestamptz)
RETURNS TABLE (product_id bigint, added_at timestamptz)
LANGUAGE sql STABLE
AS $$
SELECT e.product_id, e.occurred_at
  FROM (SELECT DISTINCT ON (i.product_id) i.product_id, i.type, i.occurred_at
          FROM recommender.interactions i
         WHERE i.user_id = $1 AND i.occurred_at <= $2
           AND i.type IN ('CART_ADD', 'CART_REMOVE', 'PURCHASE')
           AND i.occurred_at >= coalesce((SELECT max(b.occurred_at) FROM recommender.interactions b
                                           WHERE b.user_id = $1 AND b.type = 'PURCHASE' AND b.occurred_at <= $2),
                                         '-infinity')
         ORDER BY i.product_id, i.occurred_at DESC, i.interaction_id DESC) e
 WHERE e.type = 'CART_ADD'
$$;

-- Users whose cart (recommender._cart at the clock) has products added at least older_than
-- before the clock. Opted-out users are left out, and so are users
-- already emailed since their last cart addition (unless include_emailed). Each row carries the
-- cart's value and k cart recommendations (recommender.cart). SECURITY DEFINER: it reads every
-- user's interactions; granted to recommender_writer only.
CREATE FUNCTION recommender.abandoned_carts(older_than interval DEFAULT '1 day', k integer DEFAULT 5,
                                            include_emailed boolean DEFAULT false)
RETURNS TABLE (user_id text, product_ids bigint[], cart_value numeric, last_added_at timestamptz,
               recommended_product_ids bigint[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := recommender.clock();
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'recommender: older_than must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example abandoned_carts(interval ''2 hours'').';
    END IF;
    IF k IS NULL OR k < 0 OR k > 1000 THEN
        RAISE EXCEPTION 'recommender: k must be between 0 and 1000, got %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'k = 0 returns no recommendations.';
    END IF;
    RETURN QUERY
    WITH users AS (
        SELECT DISTINCT c.user_id FROM recommender.interactions c
         WHERE c.type = 'CART_ADD' AND c.occurred_at <= t
    ), carts AS (
        SELECT u.user_id, array_agg(e.product_id ORDER BY e.added_at, e.product_id) AS ids, max(e.added_at) AS last_add
          FROM users u
          CROSS JOIN LATERAL recommender._cart(u.user_id, t) e
         GROUP BY u.user_id
    )
    SELECT c.user_id, c.ids,
           (SELECT sum(p.price) FROM recommender.products p WHERE p.product_id = ANY(c.ids)),
           c.last_add,
           CASE WHEN k > 0
                THEN ARRAY(SELECT r.product_id FROM recommender.cart(c.ids, k) r ORDER BY r.position)
                ELSE '{}'::bigint[] END
      FROM carts c
     WHERE c.last_add <= t - older_than
       AND NOT EXISTS (SELECT FROM recommender.user_email_preferences e WHERE e.user_id = c.user_id AND e.opted_out)
       AND (coalesce(include_emailed, false)
            OR NOT EXISTS (SELECT FROM recommender.email_sends s WHERE s.user_id = c.user_id AND s.sent_at >= c.last_add))
     ORDER BY c.last_add, c.user_id;
END
$$;
COMMENT ON FUNCTION recommender.abandoned_carts(interval, integer, boolean) IS
    'Users with products in the cart for at least older_than (clock) and no purchase since, not opted out, not emailed since; with k cart recommendations.';
