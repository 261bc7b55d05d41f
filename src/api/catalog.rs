//! Catalogue embedding: the text template, its hash, and (re-)embedding of products.
use std::collections::HashMap;

use pgrx::prelude::*;

use crate::error::{OrRaise, RecError, Result};
use crate::model;
use recommender_core::text;

/// The text a product is embedded from (template in README "Embedded text"). IMMUTABLE: pure
/// string formatting, used by the catalogue's generated `text_hash` column.
#[pg_extern(immutable, parallel_safe)]
fn product_text(
    name: Option<&str>,
    description: Option<&str>,
    category: Option<&str>,
    price: Option<f64>,
) -> String {
    text::product_text(name, description, category, price)
}

/// The reranker's document for a product (`recommender_core::text::rerank_doc`). The pipeline
/// reads it per candidate; IMMUTABLE: pure string formatting.
#[pg_extern(immutable, parallel_safe, name = "_rerank_doc")]
fn rerank_doc(name: Option<&str>, category: Option<&str>, description: Option<&str>) -> String {
    text::rerank_doc(name, category, description)
}

/// sha256 of a text's UTF-8 bytes.
#[pg_extern(immutable, strict, parallel_safe, name = "_text_hash")]
fn text_hash(t: &str) -> Vec<u8> {
    text::text_hash(t)
}

/// Embeds the listed products whose embedding is missing or stale (all of them with `force`),
/// in batches, and stores the vectors with the hash of the text they were made from.
/// Returns how many were embedded. Internal: used by the triggers, refresh_embeddings and
/// embed_product.
#[pg_extern(volatile, name = "_reembed")]
fn reembed(product_ids: Vec<Option<i64>>, force: default!(bool, false)) -> i64 {
    let ids: Vec<i64> = product_ids.into_iter().flatten().collect();
    reembed_ids(&ids, force).or_raise()
}

/// Embeds one product now (when stale, or always with `force`). Returns true when it ran the
/// model, false when the stored embedding was already current. Unknown id: 22023.
#[pg_extern(volatile, strict)]
fn embed_product(product_id: i64, force: default!(bool, false)) -> bool {
    let exists = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM recommender.products WHERE product_id = $1)",
        &[product_id.into()],
    )
    .map_err(RecError::from)
    .or_raise()
    .unwrap_or(false);
    if !exists {
        RecError::invalid(
            format!("product {product_id} does not exist"),
            "product_id is recommender.products.product_id; look it up by external_id there.",
        )
        .raise();
    }
    reembed_ids(&[product_id], force).or_raise() > 0
}

/// `recommender._stale(embedding, embedded_hash, text_hash)` written out: this library also serves
/// databases that have not yet run `ALTER EXTENSION recommender UPDATE` to 0.6.0, which added
/// that function, so its statements may name only objects every supported version has. A pg_test
/// (`api::tests::stale_condition_is_the_sql_helper`) checks that the two agree.
pub const STALE: &str = "(embedding IS NULL OR embedded_hash IS DISTINCT FROM text_hash)";

static SELECT_STALE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "
    SELECT product_id,
           recommender.product_text(name, description, category, price::float8),
           text_hash
      FROM recommender.products
     WHERE product_id = ANY($1)
       AND ($2 OR {STALE})
     ORDER BY product_id
       FOR NO KEY UPDATE"
    )
});

/// One UPDATE per batch: vectors travel as one flat real[] and are sliced per row.
const STORE_BATCH: &str = "
    UPDATE recommender.products p
       SET embedding = ($3::real[])[(u.i - 1) * $4 + 1 : u.i * $4],  -- $4 = DIM; assignment cast to vector
           embedded_hash = u.h,
           embedded_at = now()
      FROM unnest($1::bigint[], $2::bytea[]) WITH ORDINALITY AS u(id, h, i)
     WHERE p.product_id = u.id";

/// Vectors already stored for some of these texts: another product with the same text whose
/// embedding is current. Copied instead of running the model again (catalogues list one article
/// many times: Complete Journey has 40,199 distinct texts for 92,331 products).
static STORED_FOR: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "
    SELECT DISTINCT ON (embedded_hash) embedded_hash, embedding::real[]
      FROM recommender.products
     WHERE embedded_hash = ANY($1) AND NOT {STALE}
     ORDER BY embedded_hash, product_id"
    )
});

/// Embeds `ids` a chunk at a time (8 × `recommender.embed_batch_size` products): only one chunk's
/// texts are held at once, so a statement that changes a million synced rows costs one chunk's
/// memory, not every text (README "Sync and re-embedding").
fn reembed_ids(ids: &[i64], force: bool) -> Result<i64> {
    let chunk = crate::gucs::embed_batch_size().max(1) * 8;
    let mut done = 0;
    for part in ids.chunks(chunk) {
        done += reembed_chunk(part, force)?;
    }
    Ok(done)
}

fn reembed_chunk(ids: &[i64], force: bool) -> Result<i64> {
    Spi::connect_mut(|client| {
        let rows = client.update(
            SELECT_STALE.as_str(),
            None,
            &[ids.to_vec().into(), force.into()],
        )?;
        let mut stale: Vec<(i64, String, Vec<u8>)> = Vec::new();
        for row in rows {
            let id: i64 = row
                .get(1)?
                .ok_or_else(|| RecError::Internal("NULL product_id".into()))?;
            let t: String = row.get(2)?.unwrap_or_default();
            let h: Vec<u8> = row.get(3)?.unwrap_or_default();
            stale.push((id, t, h));
        }
        if stale.is_empty() {
            return Ok(0);
        }
        let hashes: Vec<Vec<u8>> = stale.iter().map(|r| r.2.clone()).collect();
        // `force` is how a new model is rolled out: then nothing stored is reused.
        let mut stored: HashMap<Vec<u8>, Vec<f32>> = HashMap::new();
        if !force {
            for row in client.select(STORED_FOR.as_str(), None, &[hashes.clone().into()])? {
                if let (Some(h), Some(e)) = (row.get::<Vec<u8>>(1)?, row.get::<Vec<f32>>(2)?) {
                    stored.insert(h, e);
                }
            }
        }
        let texts: Vec<&str> = stale
            .iter()
            .filter(|r| !stored.contains_key(&r.2))
            .map(|r| r.1.as_str())
            .collect();
        let mut made = model::embed(&texts)?.into_iter();
        let mut flat: Vec<f32> = Vec::with_capacity(stale.len() * model::DIM);
        for r in &stale {
            match stored.get(&r.2) {
                Some(v) => flat.extend_from_slice(v),
                None => flat.extend(made.next().unwrap_or_default()),
            }
        }
        pgrx::debug1!(
            "recommender: {} product(s) embedded, {} copied from products with the same text",
            texts.len(),
            stale.len() - texts.len()
        );
        let ids: Vec<i64> = stale.iter().map(|r| r.0).collect();
        client.update(
            STORE_BATCH,
            None,
            &[
                ids.into(),
                hashes.into(),
                flat.into(),
                (model::DIM as i32).into(),
            ],
        )?;
        Ok(stale.len() as i64)
    })
}
