//! `recommender.similar_products(product_id, k)`: content similarity over the HNSW index.
use pgrx::prelude::*;

use crate::core::limits::check_k;
use crate::error::{OrRaise, RecError};

/// The nearest in-stock products to `product_id` by cosine similarity of their embeddings,
/// excluding the product itself. An unknown product, or one not embedded yet, gives zero rows.
/// k outside 1..1000: 22023. The function runs with hnsw.iterative_scan = strict_order
/// (sql/finalize.sql), so filtered rows never starve the result: k up to 1000 always fills when
/// that many in-stock products exist.
#[pg_extern(stable, strict)]
fn similar_products(
    product_id: i64,
    k: i32,
) -> TableIterator<
    'static,
    (
        name!(position, i32),
        name!(product_id, i64),
        name!(external_product_id, Option<String>),
        name!(name, Option<String>),
        name!(category, Option<String>),
        name!(price, Option<AnyNumeric>),
        name!(image_url, Option<String>),
        name!(score, f64),
    ),
> {
    let k = check_k(k)
        .map_err(|e| RecError::invalid(e.message, e.hint))
        .or_raise();
    let mut rows = nearest(product_id, k, ANN_QUERY).or_raise();
    if rows.len() < k {
        // The HNSW scan can come back short when many index entries are dead or invisible
        // (bulk deletes, concurrent uncommitted loads) and pgvector's hnsw.max_scan_tuples is
        // reached. When more eligible products exist, answer exactly instead.
        let eligible =
            Spi::get_one_with_args::<i64>(ELIGIBLE_QUERY, &[product_id.into(), (k as i64).into()])
                .map_err(RecError::from)
                .or_raise()
                .unwrap_or(0);
        if eligible as usize > rows.len() {
            rows = nearest(product_id, k, EXACT_QUERY).or_raise();
        }
    }
    TableIterator::new(rows)
}

type Row = (
    i32,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<AnyNumeric>,
    Option<String>,
    f64,
);

const ANN_QUERY: &str = "
    WITH q AS MATERIALIZED (SELECT embedding FROM recommender.products WHERE product_id = $1)
    SELECT p.product_id, p.external_id, p.name, p.category, p.price, p.image_url,
           1 - (p.embedding <=> (SELECT embedding FROM q)) AS score
      FROM recommender.products p
     WHERE p.product_id <> $1 AND p.in_stock
       AND EXISTS (SELECT 1 FROM q WHERE q.embedding IS NOT NULL)
     ORDER BY p.embedding <=> (SELECT embedding FROM q)
     LIMIT $2";

/// Same result without the index: `+ 0` makes the ORDER BY expression unusable for an index scan.
const EXACT_QUERY: &str = "
    WITH q AS MATERIALIZED (SELECT embedding FROM recommender.products WHERE product_id = $1)
    SELECT p.product_id, p.external_id, p.name, p.category, p.price, p.image_url,
           1 - (p.embedding <=> (SELECT embedding FROM q)) AS score
      FROM recommender.products p
     WHERE p.product_id <> $1 AND p.in_stock AND p.embedding IS NOT NULL
       AND EXISTS (SELECT 1 FROM q WHERE q.embedding IS NOT NULL)
     ORDER BY (p.embedding <=> (SELECT embedding FROM q)) + 0, p.product_id
     LIMIT $2";

const ELIGIBLE_QUERY: &str = "
    SELECT count(*) FROM (
        SELECT 1 FROM recommender.products p
         WHERE p.product_id <> $1 AND p.in_stock AND p.embedding IS NOT NULL
           AND EXISTS (SELECT 1 FROM recommender.products q WHERE q.product_id = $1 AND q.embedding IS NOT NULL)
         LIMIT $2) s";

fn nearest(product_id: i64, k: usize, query: &str) -> Result<Vec<Row>, RecError> {
    Spi::connect(|client| {
        let tt = client.select(query, None, &[product_id.into(), (k as i64).into()])?;
        let mut out = Vec::with_capacity(k);
        for (i, row) in tt.enumerate() {
            out.push((
                i as i32 + 1,
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<String>(2)?,
                row.get::<String>(3)?,
                row.get::<String>(4)?,
                row.get::<AnyNumeric>(5)?,
                row.get::<String>(6)?,
                row.get::<f64>(7)?.unwrap_or_default(),
            ));
        }
        Ok(out)
    })
}
