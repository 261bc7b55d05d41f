-- recommender, unit "interactions" (src/lib.rs wires the units and their order).
-- Interactions, user profiles and the maintained aggregates the pipeline reads.

CREATE TYPE recommender.interaction_type AS ENUM
    ('PURCHASE', 'CART_ADD', 'CART_REMOVE', 'WISHLIST_ADD', 'RECOMMENDATION_CLICK', 'VIEW');

-- Weight of each interaction type in preference vectors and popularity. Edit to taste; profiles
-- are rebuilt lazily (the weights' version is part of their freshness check).
CREATE TABLE recommender.interaction_weights (
    type    recommender.interaction_type PRIMARY KEY,
    weight  double precision NOT NULL CHECK (weight OPERATOR(pg_catalog.>=) -100 AND weight OPERATOR(pg_catalog.<=) 100)
);
INSERT INTO recommender.interaction_weights VALUES
    ('PURCHASE', 5), ('CART_ADD', 3), ('WISHLIST_ADD', 2), ('RECOMMENDATION_CLICK', 1.5), ('VIEW', 1), ('CART_REMOVE', -1);
SELECT pg_catalog.pg_extension_config_dump('recommender.interaction_weights', '');

-- The clock of the pipeline: recommender.as_of when set, else now(). Decay, popularity windows
-- and the new-arrival boost all read it, so history can be replayed at any date.
CREATE FUNCTION recommender.clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(CASE WHEN pg_catalog.current_setting('recommender.as_of', true) OPERATOR(pg_catalog.=) ''
                      THEN NULL ELSE pg_catalog.current_setting('recommender.as_of', true) END::pg_catalog.timestamptz,
                      pg_catalog.now()) $$;

CREATE TABLE recommender.interactions (
    interaction_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         text NOT NULL CHECK (user_id <> ''),
    product_id      bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    type            recommender.interaction_type NOT NULL,
    quantity        numeric NOT NULL DEFAULT 1 CHECK (quantity OPERATOR(pg_catalog.>=) 0),
    value           numeric,
    basket_id       text,
    request_id      text,       -- the recommendation request this came from, if any
    position        integer,    -- its position in that response
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    -- Co-purchase groups by basket; without a basket id, a user's purchases of one (UTC) day.
    basket_key      text GENERATED ALWAYS AS (coalesce(basket_id,
                        user_id OPERATOR(pg_catalog.||) '@'::text OPERATOR(pg_catalog.||)
                        ((occurred_at AT TIME ZONE 'UTC')::date OPERATOR(pg_catalog.-) date '2000-01-01')::text)) STORED
);
-- (user_id, occurred_at) with what the per-user reads need included, so they are index-only
-- scans: a profile's cache key (count and newest id at the clock), the interactions a profile is
-- built or updated from, the user's purchases (their key and the repeat source's lines).
CREATE INDEX interactions_user ON recommender.interactions (user_id, occurred_at)
    INCLUDE (interaction_id, type, product_id, basket_key);
CREATE INDEX interactions_product ON recommender.interactions (product_id);
CREATE INDEX interactions_basket ON recommender.interactions (basket_key)
    WHERE type OPERATOR(pg_catalog.=) 'PURCHASE'::recommender.interaction_type;
SELECT pg_catalog.pg_extension_config_dump('recommender.interactions', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.interactions_interaction_id_seq', '');
COMMENT ON TABLE recommender.interactions IS
    'What users did with products. Write with recommender.track() or plain INSERT/COPY: the aggregates follow by trigger.';

-- Per product and day: summed positive weights and purchase count (popularity windows). Each
-- interaction counts once whatever its quantity: 40 litres of fuel are one purchase, not 40.
CREATE TABLE recommender.product_daily (
    product_id  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    day         date NOT NULL,
    weight      double precision NOT NULL,
    purchases   bigint NOT NULL,
    PRIMARY KEY (product_id, day)
);
CREATE INDEX product_daily_day ON recommender.product_daily (day);

-- Per user and product: summed weights and the last interaction (similar users, history).
-- (0.1.0-0.4.0 also kept a cart count here; the cart is recommender._cart since 0.5.0.)
CREATE TABLE recommender.user_products (
    user_id     text NOT NULL,
    product_id  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    weight      double precision NOT NULL,
    purchases   bigint NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX user_products_product ON recommender.user_products (product_id, weight DESC);

CREATE INDEX user_products_user_rank ON recommender.user_products (user_id, weight DESC);
CREATE INDEX user_products_user_recent ON recommender.user_products (user_id, last_at DESC);

-- The popularity of every product of the window (at most 50,000) per (clock day, window),
-- computed by the first call that needs it and kept for 5 minutes; each backend reads a copy of
-- it (ranking every product of the window is the expensive part).
CREATE UNLOGGED TABLE recommender.popular_cache (
    clock_day    date NOT NULL,
    window_days  integer NOT NULL,
    product_id   bigint NOT NULL,
    score        double precision NOT NULL,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (clock_day, window_days, product_id)
);

-- Products bought in the same basket: one row per ordered pair, counting distinct baskets.
CREATE TABLE recommender.copurchase (
    product_a  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    product_b  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    baskets    bigint NOT NULL,
    PRIMARY KEY (product_a, product_b)
);
CREATE INDEX copurchase_a_rank ON recommender.copurchase (product_a, baskets DESC);

-- A user's preference: normalised Σ weight × exp(-age/decay) × embedding, with context.
-- Rebuilt lazily when the user has interactions newer than last_interaction_id.
CREATE TABLE recommender.user_profiles (
    user_id              text PRIMARY KEY,
    preference           vector(384),
    top_categories       text[] NOT NULL DEFAULT '{}',
    price_min            numeric,
    price_max            numeric,
    interaction_count    bigint NOT NULL DEFAULT 0,
    last_interaction_id  bigint NOT NULL DEFAULT 0,
    last_interaction_at  timestamptz,
    weights_version      text,
    computed_at          timestamptz NOT NULL DEFAULT now(),
    -- per-call work kept with the profile (0.2.0); reset when the profile is rebuilt, except the
    -- collaborative candidates while the user's purchases stay as they were (0.10.0)
    rerank_query         text,           -- the reranker's query: top categories, recent products
    query_embedding      vector(384),    -- its bi-encoder embedding, made on first use
    collab_ids           bigint[],       -- collaborative candidates (similar users, co-purchase),
    collab_scores        float8[],       --   their normalised scores
    collab_sources       integer[],      --   and source bits,
    collab_n             integer,        --   computed for this recommender.collaborative_candidates,
    collab_clock         timestamptz,    --   at this recommender.as_of (NULL: the live clock),
    collab_at            timestamptz,    --   at this time (reused for collaborative_cache_seconds),
    collab_purchases     bigint,         --   from this many purchase interactions at that clock
    collab_last_purchase bigint,         --   the newest of them
    -- the running sums the profile is updated from with a user's new interactions (0.11.0):
    -- preference is the sum normalised; with a decay of tau days, ages from pref_day
    pref_norm            float8,         -- the sum's L2 norm
    pref_day             float8,         -- the reference day (epoch days): the newest interaction's
    categories           text[],         -- every category's decayed weight, heaviest first
    category_weights     float8[],
    full_at              timestamptz,    -- the last rebuild from all interactions or check (NULL: rebuild next time)
    -- the item model build (item_model_builds) the collaborative candidates came from, when only
    -- it and repeat supplied them: reused past collaborative_cache_seconds until the next build
    -- (0.17.0); NULL: another source supplied some
    collab_model         bigint,
    -- the sum, over the interactions the running sums were made from, of a hash of each one
    -- (id, type, time) and of its product as it was read (category, price, embedding): a refresh
    -- after profile_rebuild_seconds compares it with theirs now and rebuilds only if one changed
    -- (0.19.0); NULL: unchecked
    sums_check           bigint
);

-- Keeps the aggregates exact under INSERT, UPDATE and DELETE of interactions (set-based, per
-- statement). sign = +1 for new rows, -1 for old rows. Rows are upserted in key order, so
-- concurrent writers lock aggregate rows in the same order and cannot deadlock on them.
-- Removals (sign -1) skip rows whose product is gone: deleting a product deletes its aggregates
-- by cascade before the interactions' statement trigger runs, so there is nothing to decrement.
-- A user/product pair's first_at and last_at are a min and a max, which a subtraction cannot take
-- back: after a removal they are recomputed from the pair's remaining interactions (0.7.0), and a
-- pair with none left is deleted. Otherwise a deleted interaction would stay "the most recent"
-- for every ordering by last_at (the pipeline's seeds, an erased user's history).
CREATE FUNCTION recommender._aggregate_sql(rel text, sign integer) RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
SELECT ARRAY[
  format($q$
    INSERT INTO recommender.product_daily AS d (product_id, day, weight, purchases)
    SELECT r.product_id, (r.occurred_at AT TIME ZONE 'UTC')::date,
           %2$s * sum(greatest(w.weight, 0)), %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE')
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type%3$s
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_id, day) DO UPDATE
       SET weight = d.weight + EXCLUDED.weight, purchases = d.purchases + EXCLUDED.purchases$q$, rel, sign, live),
  format($q$
    INSERT INTO recommender.user_products AS u (user_id, product_id, weight, purchases, first_at, last_at)
    SELECT r.user_id, r.product_id, %2$s * sum(w.weight),
           %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE'),
           min(r.occurred_at), max(r.occurred_at)
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type%3$s
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + EXCLUDED.weight, purchases = u.purchases + EXCLUDED.purchases,
           first_at = least(u.first_at, EXCLUDED.first_at), last_at = greatest(u.last_at, EXCLUDED.last_at)$q$, rel, sign, live)
] || CASE WHEN sign < 0 THEN ARRAY[
  format($q$
    WITH remaining AS (
        SELECT t.user_id, t.product_id, min(i.occurred_at) AS first_at, max(i.occurred_at) AS last_at
          FROM (SELECT DISTINCT user_id, product_id FROM %1$s) t
          LEFT JOIN recommender.interactions i ON i.user_id = t.user_id AND i.product_id = t.product_id
         GROUP BY 1, 2),
    bounds AS (
        UPDATE recommender.user_products u SET first_at = r.first_at, last_at = r.last_at
          FROM remaining r
         WHERE r.last_at IS NOT NULL AND u.user_id = r.user_id AND u.product_id = r.product_id
           AND (u.first_at, u.last_at) IS DISTINCT FROM (r.first_at, r.last_at))
    DELETE FROM recommender.user_products u USING remaining r
     WHERE r.last_at IS NULL AND u.user_id = r.user_id AND u.product_id = r.product_id$q$, rel)
] ELSE ARRAY[]::text[] END
  FROM (SELECT CASE WHEN sign < 0
                    THEN ' JOIN recommender.products p ON p.product_id = r.product_id' ELSE '' END AS live) l
$$;

-- Co-purchase pairs gained (sign +1) or lost (-1) by a statement: a pair counts once per basket,
-- so only pairs that did not (or no longer) exist in the basket without the changed rows count.
-- Removals skip products that are gone (their pairs went by cascade).
CREATE FUNCTION recommender._copurchase_sql(rel text, sign integer) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT format($q$
    WITH changed AS (
        SELECT DISTINCT basket_key, product_id FROM %1$s r WHERE type = 'PURCHASE'%3$s),
    others AS (   -- the same baskets without the changed rows
        SELECT DISTINCT i.basket_key, i.product_id
          FROM recommender.interactions i
         WHERE i.type = 'PURCHASE' AND i.basket_key IN (SELECT basket_key FROM changed)
           AND NOT EXISTS (SELECT 1 FROM %1$s n WHERE n.interaction_id = i.interaction_id)),
    after AS (    -- the baskets with the changed rows; kept = also there without them
        SELECT basket_key, product_id, bool_or(kept) AS kept
          FROM (SELECT basket_key, product_id, false AS kept FROM changed
                UNION ALL SELECT basket_key, product_id, true FROM others) u
         GROUP BY 1, 2)
    INSERT INTO recommender.copurchase AS c (product_a, product_b, baskets)
    SELECT a.product_id, b.product_id, %2$s * count(*)
      FROM after a JOIN after b ON a.basket_key = b.basket_key AND a.product_id <> b.product_id
     WHERE NOT (a.kept AND b.kept)      -- a pair both sides of which were already there is not new
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_a, product_b) DO UPDATE SET baskets = c.baskets + EXCLUDED.baskets$q$, rel, sign,
              CASE WHEN sign < 0
                   THEN ' AND EXISTS (SELECT 1 FROM recommender.products p WHERE p.product_id = r.product_id)' ELSE '' END)
$$;

CREATE FUNCTION recommender._interactions_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        FOREACH q IN ARRAY recommender._aggregate_sql('old_rows', -1) LOOP EXECUTE q; END LOOP;
        EXECUTE recommender._copurchase_sql('old_rows', -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        FOREACH q IN ARRAY recommender._aggregate_sql('new_rows', 1) LOOP EXECUTE q; END LOOP;
        EXECUTE recommender._copurchase_sql('new_rows', 1);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- The running sums of these users' profiles may hold the rows as they were: their next
        -- refresh rebuilds them from all interactions (0.11.0), and that refresh is the next
        -- call, since the stored profile no longer matches its key (0.21.0: an UPDATE keeps the
        -- count and the newest id). The rows are locked in key order, as the aggregates' are,
        -- so concurrent statements cannot deadlock on them.
        EXECUTE format($q$
            UPDATE recommender.user_profiles u SET full_at = NULL, weights_version = NULL
              FROM (SELECT p.user_id FROM recommender.user_profiles p
                     WHERE (p.full_at IS NOT NULL OR p.weights_version IS NOT NULL)
                       AND p.user_id IN (SELECT user_id FROM old_rows%s)
                     ORDER BY p.user_id FOR UPDATE OF p) l
             WHERE u.user_id = l.user_id$q$,
            CASE WHEN TG_OP = 'UPDATE' THEN ' UNION SELECT user_id FROM new_rows' ELSE '' END);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE')
       AND recommender._setting('recommender.precompute_homepage')::boolean THEN
        -- the queue worker computes their next homepage ahead (0.12.0); in key order. Under
        -- REPEATABLE READ a user queued by a transaction committed since the snapshot is a
        -- serialization failure: they are queued already, so the interaction is kept.
        BEGIN
            INSERT INTO recommender.homepage_queue (user_id)
            SELECT DISTINCT n.user_id FROM new_rows n ORDER BY 1
            ON CONFLICT (user_id) DO NOTHING;
        EXCEPTION WHEN serialization_failure THEN
            NULL;
        END;
        -- A user a warm start queued is taken as one an interaction queued from now on (0.23.0).
        -- Only such rows are locked, and none is waited for: one another transaction holds is
        -- being taken by the worker or moved already (a row this snapshot cannot see, or cannot
        -- lock under REPEATABLE READ, keeps its warm start's place).
        BEGIN
            UPDATE recommender.homepage_queue q SET warm_start = false, queued_at = now()
              FROM (SELECT h.user_id FROM recommender.homepage_queue h
                     WHERE h.warm_start AND h.user_id IN (SELECT n.user_id FROM new_rows n)
                     ORDER BY h.user_id FOR UPDATE SKIP LOCKED) w
             WHERE q.user_id = w.user_id;
        EXCEPTION WHEN serialization_failure THEN
            NULL;
        END;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER aggregates_insert AFTER INSERT ON recommender.interactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recommender._interactions_changed();
CREATE TRIGGER aggregates_update AFTER UPDATE ON recommender.interactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recommender._interactions_changed();
CREATE TRIGGER aggregates_delete AFTER DELETE ON recommender.interactions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION recommender._interactions_changed();
-- A product removed from the catalogue takes its interactions with it (ON DELETE CASCADE); the
-- aggregates referencing it cascade too.

-- Recomputes every aggregate from the interactions table (after changing interaction_weights,
-- or to verify). Progress NOTICEs; one transaction.
CREATE FUNCTION recommender.refresh_aggregates() RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    q text;
    t0 timestamptz := clock_timestamp();
BEGIN
    LOCK TABLE recommender.interactions IN SHARE MODE;
    TRUNCATE recommender.product_daily, recommender.user_products, recommender.copurchase;
    RAISE NOTICE 'recommender: rebuilding popularity and user/product aggregates';
    FOREACH q IN ARRAY recommender._aggregate_sql('recommender.interactions', 1) LOOP EXECUTE q; END LOOP;
    RAISE NOTICE 'recommender: rebuilding co-purchase pairs (% s so far)', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
    WITH bp AS MATERIALIZED (
        SELECT DISTINCT basket_key, product_id FROM recommender.interactions WHERE type = 'PURCHASE')
    INSERT INTO recommender.copurchase (product_a, product_b, baskets)
    SELECT a.product_id, b.product_id, count(*)
      FROM bp a JOIN bp b ON a.basket_key = b.basket_key AND a.product_id <> b.product_id
     GROUP BY 1, 2;
    UPDATE recommender.user_profiles SET last_interaction_id = 0;   -- rebuilt lazily
    RAISE NOTICE 'recommender: aggregates rebuilt in % s', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
END
$$;

