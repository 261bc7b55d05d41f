-- recommender 0.8.0 -> 0.9.0: the item model one row per product (issue 14). Released: never edit.
--   * recommender.item_model: each product's links as two parallel arrays (neighbor_ids, scores),
--     so the homepage's item_model source reads one row per purchased product instead of a
--     hundred; the built model is carried over.
--   * recommender.item_neighbors becomes a view of it, one link per row, as before.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.9.0'" to load this file. \quit

CREATE TABLE recommender.item_model (
    product_id   bigint   PRIMARY KEY,
    neighbor_ids bigint[] NOT NULL,
    scores       real[]   NOT NULL,
    CHECK (cardinality(neighbor_ids) = cardinality(scores))
);
COMMENT ON TABLE recommender.item_model IS
    'recommender item-to-item model: per product, its strongest EASE links (neighbor_ids, scores). Rebuilt by CALL recommender.build_item_model().';

INSERT INTO recommender.item_model (product_id, neighbor_ids, scores)
SELECT product_id, array_agg(neighbor_id ORDER BY abs(score) DESC, neighbor_id),
       array_agg(score ORDER BY abs(score) DESC, neighbor_id)
  FROM recommender.item_neighbors
 GROUP BY product_id;

DROP TABLE recommender.item_neighbors;
CREATE VIEW recommender.item_neighbors AS
SELECT m.product_id, l.neighbor_id, l.score
  FROM recommender.item_model m, unnest(m.neighbor_ids, m.scores) AS l(neighbor_id, score);
COMMENT ON VIEW recommender.item_neighbors IS
    'recommender.item_model one link per row: (product_id, neighbor_id, score).';

COMMENT ON PROCEDURE recommender.build_item_model(integer, double precision, integer) IS
    'Rebuilds recommender.item_model (the homepage''s item_model source): EASE over the items most customers bought, lambda its regularisation, neighbors links kept per product. One transaction, progress NOTICEs; owner or superuser.';
