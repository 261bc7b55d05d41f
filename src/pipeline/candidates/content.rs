//! Content: the nearest in-stock products to a vector (a preference, a cart's centre, a product),
//! through pgvector's HNSW index.
use crate::error::Result;
use crate::pipeline::db::{one, pairs};

/// Nearest in-stock products to `centre` through the HNSW index (the calling
/// function runs with hnsw.iterative_scan, so filtered rows do not starve it). When the index
/// scan still comes back short (many dead or concurrently inserted index entries reach
/// hnsw.max_scan_tuples) and more eligible products exist, the answer is computed exactly.
pub(crate) fn neighbours(centre: &[f32], n: usize, exclude: &[i64]) -> Result<Vec<(i64, f64)>> {
    neighbours_in(centre, n, exclude, &[])
}

/// The same, leaving out products of the `skip_categories`.
pub(crate) fn neighbours_in(
    centre: &[f32],
    n: usize,
    exclude: &[i64],
    skip_categories: &[String],
) -> Result<Vec<(i64, f64)>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let args = || -> Vec<pgrx::datum::DatumWithOid> {
        vec![
            centre.to_vec().into(),
            (n as i64).into(),
            exclude.to_vec().into(),
            skip_categories.to_vec().into(),
        ]
    };
    let near = pairs(
        "SELECT product_id, 1 - recommender._distance(embedding, (SELECT recommender._vector($1::real[]))) FROM recommender.products
          WHERE in_stock AND NOT (product_id = ANY($3)) AND (category IS NULL OR NOT (category = ANY($4)))
          ORDER BY recommender._distance(embedding, (SELECT recommender._vector($1::real[]))) LIMIT $2",
        &args(),
    )?;
    if near.len() >= n {
        return Ok(near);
    }
    let eligible = one::<i64>(
        "SELECT count(*) FROM (SELECT 1 FROM recommender.products
          WHERE in_stock AND embedding IS NOT NULL AND NOT (product_id = ANY($3))
            AND (category IS NULL OR NOT (category = ANY($4))) LIMIT $2) s
          WHERE $1::real[] IS NOT NULL",
        &args(),
    )?
    .unwrap_or(0);
    if eligible as usize <= near.len() {
        return Ok(near);
    }
    // `+ 0` makes the ORDER BY expression unusable for the index: an exact sort.
    pairs(
        "SELECT product_id, 1 - recommender._distance(embedding, (SELECT recommender._vector($1::real[]))) FROM recommender.products
          WHERE in_stock AND embedding IS NOT NULL AND NOT (product_id = ANY($3))
            AND (category IS NULL OR NOT (category = ANY($4)))
          ORDER BY recommender._distance(embedding, (SELECT recommender._vector($1::real[]))) + 0, product_id LIMIT $2",
        &args(),
    )
}
