//! Stages 2–4 over a candidate pool: hybrid score (core::scoring), rerank of the top N
//! (`rerank`), business rules with refill (core::scoring), for every context alike.
use std::collections::HashMap;

use recommender_core::scoring::{self, apply_rules_excluding, blend_rerank, hybrid, source};

use super::candidates::{content, popular, Pool};
use super::db::pairs_text;
use super::details::{details, rerank_docs, DetailRow};
use super::rec::Rec;
use super::{profile, rerank};
use crate::error::Result;
use crate::gucs;

/// What stages 2–4 need besides the candidate pool.
pub(crate) struct Request<'a> {
    /// The vector content similarity is measured against (preference, cart centre, product).
    centre: Option<&'a [f32]>,
    /// Whose purchases the repurchase rule looks at (homepage only; a query embedding made for
    /// the user is kept with the user's profile).
    user_id: Option<&'a str>,
    /// Never shown (cart items, the page's product) ...
    exclude: &'a [i64],
    /// ... nor products named like them (lower-cased names).
    taken: std::collections::HashSet<String>,
    /// The reranker's query, and its bi-encoder embedding once known.
    query: &'a str,
    query_vec: Option<Vec<f32>>,
    k: usize,
    rules: scoring::Rules,
    /// Rerank scores already computed for this request, by product, and the reranker that made
    /// them: a refill round (`finish`) scores only the candidates it has not seen.
    reranked: HashMap<i64, f64>,
    reranker: &'static str,
    /// The cross-encoder's time limit (`recommender.rerank_budget`). Once it ran out (`reranker`
    /// is `rerank::DEFERRED`), no round of this request reranks, so every row is ranked alike.
    budget: Option<crate::model::Budget>,
    /// Details and popularity of the products looked up so far: a refill round queries only the
    /// new ones.
    det: HashMap<i64, DetailRow>,
    pop: HashMap<i64, f64>,
    looked_up: std::collections::HashSet<i64>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        centre: Option<&'a [f32]>,
        user_id: Option<&'a str>,
        exclude: &'a [i64],
        query: &'a str,
        query_vec: Option<Vec<f32>>,
        k: usize,
        rules: scoring::Rules,
    ) -> Result<Self> {
        let taken = if exclude.is_empty() {
            Default::default()
        } else {
            // Lower-cased like the candidates' dedupe keys.
            pairs_text(
                "SELECT name FROM recommender.products WHERE product_id = ANY($1) AND name IS NOT NULL",
                &[exclude.to_vec().into()],
            )?
            .into_iter()
            .map(|n| n.to_lowercase())
            .collect()
        };
        Ok(Request {
            centre,
            user_id,
            exclude,
            taken,
            query,
            query_vec,
            k,
            rules,
            reranked: HashMap::new(),
            reranker: "none",
            budget: None,
            det: HashMap::new(),
            pop: HashMap::new(),
            looked_up: Default::default(),
        })
    }
}

impl Request<'_> {
    /// Limits the cross-encoder's time (`rerank::budget`).
    pub(crate) fn within(mut self, budget: Option<crate::model::Budget>) -> Self {
        self.budget = budget;
        self
    }
}

/// Stages 2–4 over a candidate pool, refilling it when the rules leave fewer than k rows: more
/// content neighbours are fetched from categories that are not yet at their cap (up to three
/// rounds), so k rows come back whenever the catalogue has k eligible products.
pub(crate) fn finish(mut pool: Pool, mut req: Request) -> Result<Vec<Rec>> {
    let (centre, exclude, k, rules) = (req.centre, req.exclude, req.k, req.rules);
    let mut out = score_pool(&pool, &mut req)?;
    for round in 1..=3 {
        let Some(c) = centre else { break };
        pgrx::debug1!(
            "recommender: {} of {k} rows from {} candidates ({} reranked) before refill round {round}",
            out.len(),
            pool.sources.len(),
            req.reranked.len()
        );
        if out.len() >= k {
            break;
        }
        let mut per_cat: HashMap<&str, usize> = HashMap::new();
        for r in &out {
            if let Some(cat) = r.category.as_deref() {
                *per_cat.entry(cat).or_default() += 1;
            }
        }
        let capped: Vec<String> = per_cat
            .into_iter()
            .filter(|(_, n)| *n >= rules.max_per_category)
            .map(|(c, _)| c.to_string())
            .collect();
        let mut skip: Vec<i64> = pool.sources.keys().copied().collect();
        skip.extend_from_slice(exclude);
        let want = (k - out.len()) * 4 * round;
        let extra = content::neighbours_in(c, want, &skip, &capped)?;
        if extra.is_empty() {
            break;
        }
        for (id, s) in extra {
            pool.content.insert(id, s);
            pool.add(id, source::CONTENT);
        }
        out = score_pool(&pool, &mut req)?;
    }
    Ok(out)
}

fn score_pool(pool: &Pool, req: &mut Request) -> Result<Vec<Rec>> {
    let (centre, user_id, exclude, rules) = (req.centre, req.user_id, req.exclude, req.rules);
    let ids: Vec<i64> = pool
        .sources
        .keys()
        .copied()
        .filter(|id| !exclude.contains(id))
        .collect();
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !req.looked_up.contains(id))
        .collect();
    if !missing.is_empty() {
        // Whether the user bought a candidate matters only to a rule that drops purchases.
        let buyer = user_id.filter(|_| !rules.allow_purchased);
        req.det.extend(details(&missing, centre, buyer)?);
        req.pop.extend(popular::of(&missing)?);
        req.looked_up.extend(missing);
    }
    let (det, pop) = (&req.det, &req.pop);
    let mut cands = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(d) = det.get(id) else { continue };
        let mut c = d.0.clone();
        c.content = pool.content.get(id).copied().unwrap_or(c.content);
        c.collaborative = pool.collaborative(*id);
        c.popularity = pop.get(id).copied().unwrap_or(0.0);
        c.sources = pool.sources.get(id).copied().unwrap_or(0);
        cands.push(c);
    }
    let mut scored = hybrid(cands, pool.weights.unwrap_or_else(gucs::weights));
    // Stage 3 on the top N candidates that can be shown (reranking a product the rules drop
    // would waste the model's time).
    let (top_n, lambda) = gucs::rerank();
    let showable = scoring::rerank_targets(&scored, top_n, rules, &req.taken);
    let deferred = |req: &Request| req.reranker == rerank::DEFERRED;
    if !showable.is_empty() && !deferred(req) {
        // Only candidates this request has not reranked yet go to the model.
        let new: Vec<usize> = showable
            .iter()
            .copied()
            .filter(|&i| !req.reranked.contains_key(&scored[i].cand.product_id))
            .collect();
        if !new.is_empty() {
            let ids: Vec<i64> = new.iter().map(|&i| scored[i].cand.product_id).collect();
            let mut found = rerank_docs(&ids)?;
            let docs: Vec<String> = ids
                .iter()
                .map(|id| found.remove(id).unwrap_or_default())
                .collect();
            match rerank::score(req.query, req.query_vec.as_deref(), &docs, &ids, req.budget)? {
                Some(r) => {
                    req.reranker = r.reranker;
                    if let Some(v) = r.query_vec {
                        if let Some(u) = user_id {
                            profile::store_query_embedding(u, &v)?;
                        }
                        req.query_vec = Some(v);
                    }
                    req.reranked.extend(ids.into_iter().zip(r.scores));
                }
                None => {
                    pgrx::debug1!(
                        "recommender: rerank of {} candidates deferred: not every pair scored within recommender.rerank_budget",
                        ids.len()
                    );
                    req.reranker = rerank::DEFERRED;
                    req.reranked.clear();
                }
            }
        }
        if !deferred(req) {
            for &i in &showable {
                scored[i].rerank = req.reranked.get(&scored[i].cand.product_id).copied();
            }
            blend_rerank(&mut scored, lambda);
        }
    }
    let reranker = req.reranker;
    let kept = apply_rules_excluding(scored, req.k, rules, &req.taken);
    Ok(kept
        .into_iter()
        .map(|s| det[&s.cand.product_id].1.rec(s, reranker))
        .collect())
}
