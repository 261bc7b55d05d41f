-- recommender 0.7.0 -> 0.8.0: the item-to-item model (issue 14). Released: never edit.
--   * recommender.item_neighbors: EASE's strongest links between products, read by the
--     homepage's new `item_model` candidate source; empty until the first build.
--   * CALL recommender.build_item_model(items, lambda, neighbors): builds it inside the database
--     (owner or superuser; schedulable with pg_cron), over recommender._build_item_model.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.8.0'" to load this file. \quit

CREATE FUNCTION recommender._build_item_model(items integer, lambda double precision, neighbors integer)
RETURNS TABLE (products bigint, customers bigint, pairs bigint, seconds double precision)
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', '_build_item_model_wrapper';
ALTER FUNCTION recommender._build_item_model(integer, double precision, integer) SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION recommender._build_item_model(integer, double precision, integer) FROM PUBLIC;

CREATE TABLE recommender.item_neighbors (
    product_id  bigint NOT NULL,
    neighbor_id bigint NOT NULL,
    score       real   NOT NULL,
    PRIMARY KEY (product_id, neighbor_id)
);
COMMENT ON TABLE recommender.item_neighbors IS
    'recommender item-to-item model (EASE weights, each product''s strongest links). Rebuilt by CALL recommender.build_item_model().';

CREATE PROCEDURE recommender.build_item_model(items integer DEFAULT 5000,
                                              lambda double precision DEFAULT 1000,
                                              neighbors integer DEFAULT 100)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM recommender._build_item_model($1, $2, $3);
END
$$;
COMMENT ON PROCEDURE recommender.build_item_model(integer, double precision, integer) IS
    'Rebuilds recommender.item_neighbors (the homepage''s item_model source): EASE over the items most customers bought, lambda its regularisation, neighbors links kept per product. One transaction, progress NOTICEs; owner or superuser.';
REVOKE ALL ON PROCEDURE recommender.build_item_model(integer, double precision, integer) FROM PUBLIC;
