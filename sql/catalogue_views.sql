-- recommender, unit "catalogue_views" (src/lib.rs wires the units and their order).
-- Views over the catalogue and the queue: embedding status, stale products.

CREATE VIEW recommender.sync_status WITH (security_barrier) AS
SELECT coalesce(coalesce(s.source, p.source)::text, '(direct)') AS source,
       s.source IS NOT NULL                          AS synced,
       coalesce(p.products, 0)                       AS products,
       coalesce(p.embedded, 0)                       AS embedded,
       coalesce(p.stale, 0)                          AS stale,
       coalesce(p.out_of_stock, 0)                   AS out_of_stock,
       p.last_change,
       p.last_embedded,
       s.synced_at,
       coalesce(q.pending, 0)                        AS pending,
       coalesce(q.failing, 0)                        AS failing,
       q.last_error,
       q.last_error_at
  FROM recommender.sync_sources s
  FULL JOIN (SELECT source,
                    pg_catalog.count(*)                                                            AS products,
                    pg_catalog.count(*) FILTER (WHERE NOT recommender._stale(embedding, embedded_hash, text_hash)) AS embedded,
                    pg_catalog.count(*) FILTER (WHERE recommender._stale(embedding, embedded_hash, text_hash)) AS stale,
                    pg_catalog.count(*) FILTER (WHERE NOT in_stock)                                AS out_of_stock,
                    pg_catalog.max(updated_at)                                                     AS last_change,
                    pg_catalog.max(embedded_at)                                                    AS last_embedded
               FROM recommender.products
              GROUP BY source) p ON p.source::pg_catalog.oid OPERATOR(pg_catalog.=) s.source::pg_catalog.oid
  LEFT JOIN (SELECT pr.source,
                    pg_catalog.count(*)                                                 AS pending,
                    pg_catalog.count(*) FILTER (WHERE q.attempts OPERATOR(pg_catalog.>) 0) AS failing,
                    (pg_catalog.array_agg(q.last_error ORDER BY q.last_error_at DESC)
                         FILTER (WHERE q.last_error IS NOT NULL))[1]                    AS last_error,
                    pg_catalog.max(q.last_error_at)                                     AS last_error_at
               FROM recommender.embedding_queue q
               JOIN recommender.products pr ON pr.product_id OPERATOR(pg_catalog.=) q.product_id
              GROUP BY pr.source) q
         ON q.source::pg_catalog.oid IS NOT DISTINCT FROM coalesce(s.source, p.source)::pg_catalog.oid;
COMMENT ON VIEW recommender.sync_status IS
    'Per source table: products in the catalogue, embedded, stale (waiting for the model), out of stock; queued (pending), failing, and the newest queue error.';

-- Every stale product: since when, whether it is queued, and why it failed if it did.
CREATE VIEW recommender.staleness WITH (security_barrier) AS
SELECT p.product_id,
       p.external_id,
       coalesce(p.source::text, '(direct)')               AS source,
       p.name,
       p.updated_at                                       AS changed_at,
       pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) p.updated_at AS stale_for,
       q.product_id IS NOT NULL                           AS queued,
       coalesce(q.attempts, 0)                            AS attempts,
       q.next_attempt_at,
       q.last_error,
       q.last_error_at
  FROM recommender.products p
  LEFT JOIN recommender.embedding_queue q ON q.product_id OPERATOR(pg_catalog.=) p.product_id
 WHERE recommender._stale(p.embedding, p.embedded_hash, p.text_hash);
COMMENT ON VIEW recommender.staleness IS
    'Products whose embedding is missing or older than their text: how long, queued or not, failed attempts and the last error.';
