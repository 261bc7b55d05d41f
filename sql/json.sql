-- recommender, unit "json" (src/lib.rs wires the units and their order).
-- JSON forms of the recommendation functions.

-- The response object; with recommender.log_impressions on, its products are also logged as
-- impressions under its request_id.
CREATE FUNCTION recommender._response(context text, user_id text, recs jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rid text := gen_random_uuid()::text;
BEGIN
    IF recommender._setting('recommender.log_impressions')::boolean
       AND jsonb_array_length(coalesce(recs, '[]'::jsonb)) > 0 THEN
        PERFORM recommender.record_impressions(context, user_id,
                    ARRAY(SELECT (e->>'product_id')::bigint FROM jsonb_array_elements(recs) WITH ORDINALITY AS t(e, n) ORDER BY t.n),
                    rid);
    END IF;
    RETURN jsonb_build_object('recommendations', coalesce(recs, '[]'::jsonb), 'request_id', rid,
                              'context', context, 'user_id', user_id, 'generated_at', recommender.clock());
END
$$;

-- One recommendation row (any of the functions' row types) as the response's item object.
-- STABLE, not IMMUTABLE: to_jsonb prints timestamps by the session's TimeZone.
CREATE FUNCTION recommender._item(r anyelement) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.jsonb_build_object(
           'product_id', j OPERATOR(pg_catalog.->) 'product_id',
           'external_product_id', j OPERATOR(pg_catalog.->) 'external_product_id',
           'name', j OPERATOR(pg_catalog.->) 'name', 'category', j OPERATOR(pg_catalog.->) 'category',
           'price', j OPERATOR(pg_catalog.->) 'price', 'image_url', j OPERATOR(pg_catalog.->) 'image_url',
           'score', pg_catalog.round((j OPERATOR(pg_catalog.->>) 'score')::numeric, 6),
           'position', j OPERATOR(pg_catalog.->) 'position')
  FROM (SELECT pg_catalog.to_jsonb(r) AS j) s
$$;

CREATE FUNCTION recommender.homepage_json(user_id text, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('homepage', $1,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.homepage($1, $2) r))
$$;

CREATE FUNCTION recommender.similar_products_json(product_id bigint, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('product', NULL,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.similar_products($1, $2) r))
$$;

CREATE FUNCTION recommender.cart_json(product_ids bigint[], k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('cart', NULL,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.cart($1, $2) r))
$$;

CREATE FUNCTION recommender.cart_json(user_id text, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('cart', $1,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.cart($1, $2) r))
$$;

CREATE FUNCTION recommender.frequently_bought_together_json(product_id bigint, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('frequently_bought_together', NULL,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.frequently_bought_together($1, $2) r))
$$;
