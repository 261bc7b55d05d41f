//! Display fields and rule inputs of products (one statement per request and refill round).
use std::collections::HashMap;

use pgrx::prelude::*;
use recommender_core::scoring::{Candidate, Scored};

use super::plans;
use super::rec::Rec;
use crate::error::Result;

/// Display fields and rule inputs of products.
pub struct Detail {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price: Option<AnyNumeric>,
    pub image_url: Option<String>,
}

pub struct DetailRow(pub Candidate, pub Detail);

impl DetailRow {
    pub(crate) fn to_rec(&self, score: f64, content: f64, collab: f64, src: u8) -> Rec {
        let mut c = self.0.clone();
        c.sources = src;
        let s = Scored {
            cand: c,
            content,
            collaborative: collab,
            popularity: 0.0,
            hybrid: score,
            rerank: None,
            score,
        };
        self.1.rec(s, "none")
    }
}

impl Detail {
    pub(crate) fn rec(&self, s: Scored, reranker: &'static str) -> Rec {
        Rec {
            product_id: s.cand.product_id,
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            category: self.category.clone(),
            price: self.price.clone(),
            image_url: self.image_url.clone(),
            scored: s,
            reranker,
        }
    }
}

/// The reranker's documents of `ids` (`recommender._rerank_doc`), asked for only for the
/// candidates stage 3 scores: most candidates of a request are never reranked.
pub(crate) fn rerank_docs(ids: &[i64]) -> Result<HashMap<i64, String>> {
    Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT product_id, recommender._rerank_doc(name, category, description)
               FROM recommender.products WHERE product_id = ANY($1)",
            None,
            &[ids.to_vec().into()],
        )?;
        let mut m = HashMap::new();
        for r in t {
            if let (Some(id), doc) = (r.get::<i64>(1)?, r.get::<String>(2)?) {
                m.insert(id, doc.unwrap_or_default());
            }
        }
        Ok(m)
    })
}

/// Details of `ids`; content similarity to `centre` when given; purchased flag for `user_id`.
pub(crate) fn details(
    ids: &[i64],
    centre: Option<&[f32]>,
    user_id: Option<&str>,
) -> Result<HashMap<i64, DetailRow>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT p.product_id, p.external_id, p.name, p.category, p.price, p.image_url, p.in_stock,
                    (extract(epoch FROM (SELECT recommender.clock()) - p.created_at) / 86400.0)::float8,
                    CASE WHEN $2::real[] IS NULL OR p.embedding IS NULL THEN 0
                         ELSE 1 - recommender._distance(p.embedding, (SELECT recommender._vector($2::real[]))) END::float8,
                    EXISTS (SELECT 1 FROM recommender.user_products u
                             WHERE u.user_id = $3 AND u.product_id = p.product_id AND u.purchases > 0)
               FROM recommender.products p WHERE p.product_id = ANY($1)",
            None,
            &[ids.to_vec().into(), centre.map(|c| c.to_vec()).into(), user_id.into()],
        )?;
        let mut m = HashMap::new();
        for r in t {
            let id = r.get::<i64>(1)?.unwrap_or(0);
            let cand = Candidate {
                product_id: id,
                category: r.get::<String>(4)?,
                in_stock: r.get::<bool>(7)?.unwrap_or(false),
                age_days: r.get::<f64>(8)?.unwrap_or(f64::INFINITY),
                purchased: r.get::<bool>(10)?.unwrap_or(false),
                dedupe_key: r.get::<String>(3)?.map(|n| n.to_lowercase()),
                content: r.get::<f64>(9)?.unwrap_or(0.0),
                collaborative: 0.0,
                popularity: 0.0,
                sources: 0,
            };
            let det = Detail {
                external_id: r.get::<String>(2)?,
                name: r.get::<String>(3)?,
                category: r.get::<String>(4)?,
                price: r.get::<AnyNumeric>(5)?,
                image_url: r.get::<String>(6)?,
            };
            m.insert(id, DetailRow(cand, det));
        }
        Ok(m)
    })
}
