-- recommender, unit "item_model": the item-to-item model of the homepage's `item_model` source.
-- EASE (Steck, WWW 2019) over the products the most customers bought, blended with the adoption
-- model (0.24.0: what customers' histories led them to buy for the first time in the last
-- adoption_days before the clock): for each product, its strongest links to other products by
-- absolute weight (B[product][neighbor] of the model, see crates/core/src/item_model.rs; a
-- negative link is a substitute, counting against). A
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
    'recommender item-to-item model: per product, its strongest links (neighbor_ids, scores) of EASE blended with the adoption model. Rebuilt by CALL recommender.build_item_model().';

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
    seconds   double precision NOT NULL,
    -- 0.24.0: the adoption model's arguments; a build before it had none (weight 0)
    adoption_days   integer NOT NULL DEFAULT 28,
    adoption_lambda double precision NOT NULL DEFAULT 10000,
    adoption_weight double precision NOT NULL DEFAULT 0
);
SELECT pg_catalog.pg_extension_config_dump('recommender.item_model_builds', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.item_model_builds_build_id_seq', '');
COMMENT ON TABLE recommender.item_model_builds IS
    'recommender.build_item_model() calls: the clock, the arguments (items, lambda, neighbors; adoption_days, adoption_lambda, adoption_weight), what the build read and wrote, and how long it took. evaluate() and tune() rebuild with the latest build''s arguments.';

-- The build, in one transaction (readers keep the previous model until it commits; a cancel or an
-- error leaves it as it was), with progress NOTICEs. Reads the purchases at the clock
-- (recommender.as_of). Owner or superuser; schedulable with pg_cron, e.g. nightly.
-- adoption_weight 0 builds EASE alone (the model of 0.8.0 to 0.23.0).
CREATE PROCEDURE recommender.build_item_model(items integer DEFAULT 5000,
                                              lambda double precision DEFAULT 1000,
                                              neighbors integer DEFAULT 100,
                                              adoption_days integer DEFAULT 28,
                                              adoption_lambda double precision DEFAULT 10000,
                                              adoption_weight double precision DEFAULT 0.2)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO recommender.item_model_builds (clock, items, lambda, neighbors, products, customers, pairs, seconds,
                                               adoption_days, adoption_lambda, adoption_weight)
    SELECT recommender.clock(), $1, $2, $3, b.products, b.customers, b.pairs, b.seconds, $4, $5, $6
      FROM recommender._build_item_model($1, $2, $3, $4, $5, $6) AS b;
END
$$;
COMMENT ON PROCEDURE recommender.build_item_model(integer, double precision, integer, integer, double precision, double precision) IS
    'Rebuilds recommender.item_model (the homepage''s item_model source): EASE over the items most customers bought (lambda its regularisation), blended with adoption_weight of the adoption model (what the histories led customers to buy for the first time in the adoption_days before the clock; adoption_lambda its regularisation; 0: EASE alone), neighbors links kept per product; records the build in recommender.item_model_builds. One transaction, progress NOTICEs; owner or superuser.';
