//! Frequently bought together: a product's co-purchase partners, filled up by content
//! similarity, with the rules every context keeps (one product per name, never the page's name).
use recommender_core::scoring::source;

use crate::error::Result;
use crate::pipeline::candidates::{content, copurchase};
use crate::pipeline::db::{one, pairs_text};
use crate::pipeline::details::{details, DetailRow};
use crate::pipeline::rec::Rec;

/// Co-purchase partners of a product; below `k` (too little data) the rest comes from content
/// similarity. One product per name, none named like the page's product, as in every context.
/// Returns rows and, per row, which of the two produced it.
pub fn frequently_bought_together(product_id: i64, k: usize) -> Result<Vec<(Rec, &'static str)>> {
    let mut out: Vec<(Rec, &'static str)> = Vec::new();
    // The rule of every context: one product per name, never one named like the page's product
    // (catalogues list an article several times under other ids).
    let mut names: std::collections::HashSet<String> = pairs_text(
        "SELECT name FROM recommender.products WHERE product_id = $1 AND name IS NOT NULL",
        &[product_id.into()],
    )?
    .into_iter()
    .map(|n| n.to_lowercase())
    .collect();
    let mut first_of_its_name = |d: &DetailRow| {
        d.0.dedupe_key
            .as_ref()
            .is_none_or(|n| names.insert(n.clone()))
    };
    let co = copurchase::of(&[product_id], k * 3)?;
    let max = co.iter().map(|c| c.1).fold(0.0, f64::max);
    let ids: Vec<i64> = co.iter().map(|c| c.0).collect();
    let det = details(&ids, None, None)?;
    for (id, n) in &co {
        if out.len() >= k {
            break;
        }
        if let Some(d) = det.get(id).filter(|d| d.0.in_stock) {
            if first_of_its_name(d) {
                let s = if max > 0.0 { n / max } else { 0.0 };
                out.push((d.to_rec(s, 0.0, s, source::CO_PURCHASE), "co_purchase"));
            }
        }
    }
    if out.len() < k {
        let have: Vec<i64> = out
            .iter()
            .map(|r| r.0.product_id)
            .chain([product_id])
            .collect();
        let centre = one::<Vec<f32>>(
            "SELECT (SELECT embedding::real[] FROM recommender.products WHERE product_id = $1)",
            &[product_id.into()],
        )?;
        if let Some(c) = centre {
            // more neighbours than needed: copies of a name already shown are skipped
            let near = content::neighbours(&c, 4 * k + have.len(), &have)?;
            let ids: Vec<i64> = near.iter().map(|n| n.0).collect();
            let d = details(&ids, None, None)?;
            for (id, s) in near {
                if out.len() >= k {
                    break;
                }
                if let Some(d) = d.get(&id).filter(|d| first_of_its_name(d)) {
                    out.push((d.to_rec(s, s, 0.0, source::CONTENT), "similarity"));
                }
            }
        }
    }
    Ok(out)
}
