-- recommender, unit "item_model": the item-to-item model of the homepage's `item_model` source.
-- EASE (Steck, WWW 2019) over the products the most customers bought: for each product, its
-- strongest links to other products by absolute weight (B[product][neighbor] of the model, see
-- crates/core/src/item_model.rs; a negative link is a substitute, counting against). A
-- customer's score of a product is the sum of the links to it from everything the customer
-- bought. One row per product, its links as two parallel arrays: the source reads one row per
-- purchased product (one index probe each) instead of a hundred. Built by
-- CALL recommender.build_item_model(); until then the table is empty and the source finds
-- nothing. No foreign keys: a deleted product's links stay until the next build, and the pipeline
-- never shows a product that left the catalogue.
CREATE TABLE recommender.item_model (
    product_id   bigint   PRIMARY KEY,
    neighbor_ids bigint[] NOT NULL,
    scores       real[]   NOT NULL,
    CHECK (pg_catalog.cardinality(neighbor_ids) OPERATOR(pg_catalog.=) pg_catalog.cardinality(scores))
);
COMMENT ON TABLE recommender.item_model IS
    'recommender item-to-item model: per product, its strongest EASE links (neighbor_ids, scores). Rebuilt by CALL recommender.build_item_model().';

-- The same links one per row, for reading.
CREATE VIEW recommender.item_neighbors AS
SELECT m.product_id, l.neighbor_id, l.score
  FROM recommender.item_model m,
       ROWS FROM (pg_catalog.unnest(m.neighbor_ids), pg_catalog.unnest(m.scores)) AS l(neighbor_id, score);
COMMENT ON VIEW recommender.item_neighbors IS
    'recommender.item_model one link per row: (product_id, neighbor_id, score).';

-- Every build of the model: what it was built with and what it read (0.14.0). evaluate() and
-- tune() rebuild the model for their split with the latest build's items, lambda and neighbors.
CREATE TABLE recommender.item_model_builds (
    build_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    built_at  timestamptz NOT NULL DEFAULT now(),
    clock     timestamptz NOT NULL,      -- the purchases read were those at this time (as_of)
    items     integer NOT NULL,          -- the arguments of build_item_model()
    lambda    double precision NOT NULL,
    neighbors integer NOT NULL,
    products  bigint NOT NULL,           -- what the build found and wrote
    customers bigint NOT NULL,
    pairs     bigint NOT NULL,
    seconds   double precision NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('recommender.item_model_builds', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.item_model_builds_build_id_seq', '');
COMMENT ON TABLE recommender.item_model_builds IS
    'recommender.build_item_model() calls: the clock, the arguments (items, lambda, neighbors), what the build read and wrote, and how long it took. evaluate() and tune() rebuild with the latest build''s arguments.';

-- The build, in one transaction (readers keep the previous model until it commits; a cancel or an
-- error leaves it as it was), with progress NOTICEs. Reads the purchases at the clock
-- (recommender.as_of). Owner or superuser; schedulable with pg_cron, e.g. nightly.
CREATE PROCEDURE recommender.build_item_model(items integer DEFAULT 5000,
                                              lambda double precision DEFAULT 1000,
                                              neighbors integer DEFAULT 100)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO recommender.item_model_builds (clock, items, lambda, neighbors, products, customers, pairs, seconds)
    SELECT recommender.clock(), $1, $2, $3, b.products, b.customers, b.pairs, b.seconds
      FROM recommender._build_item_model($1, $2, $3) AS b;
END
$$;
COMMENT ON PROCEDURE recommender.build_item_model(integer, double precision, integer) IS
    'Rebuilds recommender.item_model (the homepage''s item_model source): EASE over the items most customers bought, lambda its regularisation, neighbors links kept per product; records the build in recommender.item_model_builds. One transaction, progress NOTICEs; owner or superuser.';
