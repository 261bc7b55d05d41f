//! `recommender.embed(text)` and `recommender.embed(text[])` are SQL wrappers (sql/embedding.sql)
//! that cast these `real[]` results to `vector(384)`.
use pgrx::prelude::*;

use crate::error::{OrRaise, RecError};
use crate::model;
use recommender_core::limits::check_array;

/// One text -> its 384-d embedding as real[]. STABLE: the result depends on the installed model
/// files, which can change between statements, so it is not IMMUTABLE.
#[pg_extern(stable, strict, parallel_restricted, name = "_embed")]
fn embed_one(text: &str) -> Vec<f32> {
    model::embed(&[text]).or_raise().pop().unwrap_or_default()
}

/// Many texts in one batched call (at most limits::MAX_ARRAY); NULL elements give NULL rows,
/// order is preserved.
#[pg_extern(stable, strict, parallel_restricted, name = "_embed_many")]
fn embed_many(texts: Vec<Option<String>>) -> SetOfIterator<'static, Option<Vec<f32>>> {
    check_array(texts.len(), "texts")
        .map_err(RecError::from)
        .or_raise();
    let present: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
    let mut vecs = model::embed(&present).or_raise().into_iter();
    let rows: Vec<Option<Vec<f32>>> = texts
        .iter()
        .map(|t| t.as_ref().and_then(|_| vecs.next()))
        .collect();
    SetOfIterator::new(rows)
}
