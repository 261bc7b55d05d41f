//! The four stages, run inside one SQL call:
//! 1. candidates (SPI: HNSW content neighbours, similar users, co-purchase, popularity),
//! 2. hybrid score (core::scoring),
//! 3. rerank of the top N (cross-encoder, or the bi-encoder when none is installed),
//! 4. business rules with refill (core::scoring).
mod plans;
pub mod profile;
pub mod rerank;

use std::collections::HashMap;

use pgrx::prelude::*;

use crate::core::scoring::{
    self, apply_rules, apply_rules_excluding, blend_rerank, hybrid, source, Candidate, Scored,
};
use crate::error::{RecError, Result};
use crate::gucs;

/// One output row of every recommendation function.
#[derive(Debug, Clone)]
pub struct Rec {
    pub product_id: i64,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price: Option<AnyNumeric>,
    pub image_url: Option<String>,
    pub scored: Scored,
    pub reranker: &'static str,
}

/// Raw signals gathered in stage 1, keyed by product.
#[derive(Default)]
struct Pool {
    content: HashMap<i64, f64>,
    collab: HashMap<i64, f64>,
    sources: HashMap<i64, u8>,
}

impl Pool {
    fn add(&mut self, id: i64, src: u8) {
        *self.sources.entry(id).or_default() |= src;
    }

    /// A collaborative candidate with a normalised score; the larger score of two sources wins.
    fn add_collab(&mut self, id: i64, score: f64, src: u8) {
        let e = self.collab.entry(id).or_default();
        *e = e.max(score);
        self.add(id, src);
    }
}

/// Whether this call may keep what it computed in the caches (profile, collaborative candidates,
/// rerank query embedding, popularity): not on a hot standby and not in a read-only transaction.
/// Otherwise every call computes afresh and writes nothing.
pub fn can_write() -> bool {
    // SAFETY: reads of backend-global state, inside a transaction.
    unsafe { !pg_sys::RecoveryInProgress() && !pg_sys::XactReadOnly }
}

/// The user's home page: the full pipeline, or popularity for a user without history.
pub fn homepage(user_id: &str, k: usize) -> Result<Vec<Rec>> {
    let Some(prof) = profile::get(user_id)?.filter(|p| p.preference.is_some()) else {
        return popular(k, &[], true);
    };
    let pref = prof.preference.clone().unwrap_or_default();
    let (n_content, n_collab) = gucs::candidate_counts();
    let mut pool = Pool::default();
    for (id, s) in content_neighbours(&pref, n_content.max(k), &[])? {
        pool.content.insert(id, s);
        pool.add(id, source::CONTENT);
    }
    let collab = match prof.collab {
        Some(c) => c,
        None if n_collab > 0 => {
            let c = collaborative(user_id, n_collab)?;
            profile::store_collab(user_id, &c, n_collab)?;
            c
        }
        None => Vec::new(),
    };
    for (id, s, src) in collab {
        pool.add_collab(id, s, src);
    }
    let req = Request::new(
        Some(&pref),
        Some(user_id),
        &[],
        &prof.query,
        prof.query_embedding.clone(),
        k,
        gucs::rules(),
    )?;
    finish(pool, req)
}

/// A user's collaborative candidates: products of similar users and co-purchase partners of the
/// user's recent purchases, each list normalised, the larger score kept (sorted by product id).
fn collaborative(user_id: &str, n: usize) -> Result<Vec<(i64, f64, u8)>> {
    let mut pool = Pool::default();
    merge_collab(
        &mut pool,
        similar_users_products(user_id, n)?,
        source::SIMILAR_USERS,
    );
    merge_collab(
        &mut pool,
        copurchase_of_user(user_id, n)?,
        source::CO_PURCHASE,
    );
    let mut out: Vec<(i64, f64, u8)> = pool
        .collab
        .iter()
        .map(|(&id, &s)| (id, s, pool.sources.get(&id).copied().unwrap_or(0)))
        .collect();
    out.sort_by_key(|c| c.0);
    Ok(out)
}

/// A product page: content neighbours of the product blended with its co-purchase partners,
/// reranked against the product's own text. In stock only; no category cap (similar products
/// share a category by nature). Unknown or not yet embedded product: no rows.
pub fn similar(product_id: i64, k: usize) -> Result<Vec<Rec>> {
    let row: Option<(Vec<f32>, String)> = Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT embedding::real[], recommender._rerank_doc(name, category, description)
               FROM recommender.products WHERE product_id = $1 AND embedding IS NOT NULL",
            None,
            &[product_id.into()],
        )?;
        let mut out = None;
        for r in t {
            out = r
                .get::<Vec<f32>>(1)?
                .map(|e| (e, r.get::<String>(2).ok().flatten().unwrap_or_default()));
        }
        Ok::<_, RecError>(out)
    })?;
    let Some((centre, doc)) = row else {
        return Ok(Vec::new());
    };
    let (n_content, n_collab) = gucs::candidate_counts();
    let mut pool = Pool::default();
    for (id, s) in content_neighbours(&centre, n_content.max(k), &[product_id])? {
        pool.content.insert(id, s);
        pool.add(id, source::CONTENT);
    }
    merge_collab(
        &mut pool,
        copurchase_of(&[product_id], n_collab)?,
        source::CO_PURCHASE,
    );
    let rules = scoring::Rules {
        max_per_category: usize::MAX,
        allow_purchased: true,
        ..gucs::rules()
    };
    let exclude = [product_id];
    // The bi-encoder's query is the product itself: its stored embedding, no model run.
    let query_vec = Some(centre.clone());
    let req = Request::new(Some(&centre), None, &exclude, &doc, query_vec, k, rules)?;
    finish(pool, req)
}

/// Items to add to a cart: neighbours of the cart's mean embedding plus co-purchase, never the
/// cart's own items.
pub fn cart(items: &[i64], k: usize) -> Result<Vec<Rec>> {
    let CartCentre {
        found,
        names,
        centre,
    } = cart_centre(items)?;
    if found.is_empty() {
        return popular(k, items, false);
    }
    let (n_content, n_collab) = gucs::candidate_counts();
    let mut pool = Pool::default();
    if let Some(c) = &centre {
        for (id, s) in content_neighbours(c, n_content.max(k) + found.len(), &found)? {
            pool.content.insert(id, s);
            pool.add(id, source::CONTENT);
        }
    }
    let co = copurchase_of(&found, n_collab.max(k))?;
    merge_collab(&mut pool, co, source::CO_PURCHASE);
    let query = format!("Goes well with: {}", names.join("; "));
    // The bi-encoder's query is the cart itself: the mean of its items' stored embeddings.
    let query_vec = centre.clone();
    let req = Request::new(
        centre.as_deref(),
        None,
        &found,
        &query,
        query_vec,
        k,
        gucs::rules(),
    )?;
    finish(pool, req)
}

/// Products in the user's cart at the clock (`recommender._cart`, the definition
/// `abandoned_carts` uses too), most recently added first; at most `MAX_ARRAY` of them.
pub fn user_cart(user_id: &str) -> Result<Vec<i64>> {
    Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT product_id FROM recommender._cart($1, recommender.clock())
              ORDER BY added_at DESC, product_id LIMIT $2",
            None,
            &[
                user_id.into(),
                (crate::core::limits::MAX_ARRAY as i64).into(),
            ],
        )?;
        let mut v = Vec::new();
        for r in t {
            v.extend(r.get::<i64>(1)?);
        }
        Ok(v)
    })
}

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
    let co = copurchase_of(&[product_id], k * 3)?;
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
            let near = content_neighbours(&c, 4 * k + have.len(), &have)?;
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

fn merge_collab(pool: &mut Pool, items: Vec<(i64, f64)>, src: u8) {
    let norm = scoring::normalize(&items.iter().map(|i| i.1).collect::<Vec<_>>());
    for ((id, _), n) in items.into_iter().zip(norm) {
        pool.add_collab(id, n, src);
    }
}

/// What stages 2–4 need besides the candidate pool.
struct Request<'a> {
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
    /// Details and popularity of the products looked up so far: a refill round queries only the
    /// new ones.
    det: HashMap<i64, DetailRow>,
    pop: HashMap<i64, f64>,
    looked_up: std::collections::HashSet<i64>,
}

impl<'a> Request<'a> {
    fn new(
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
            det: HashMap::new(),
            pop: HashMap::new(),
            looked_up: Default::default(),
        })
    }
}

/// Stages 2–4 over a candidate pool, refilling it when the rules leave fewer than k rows: more
/// content neighbours are fetched from categories that are not yet at their cap (up to three
/// rounds), so k rows come back whenever the catalogue has k eligible products.
fn finish(mut pool: Pool, mut req: Request) -> Result<Vec<Rec>> {
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
        let extra = content_neighbours_in(c, want, &skip, &capped)?;
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
        req.det.extend(details(&missing, centre, user_id)?);
        req.pop.extend(popularity(&missing)?);
        req.looked_up.extend(missing);
    }
    let (det, pop) = (&req.det, &req.pop);
    let mut cands = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(d) = det.get(id) else { continue };
        let mut c = d.0.clone();
        c.content = pool.content.get(id).copied().unwrap_or(c.content);
        c.collaborative = pool.collab.get(id).copied().unwrap_or(0.0);
        c.popularity = pop.get(id).copied().unwrap_or(0.0);
        c.sources = pool.sources.get(id).copied().unwrap_or(0);
        cands.push(c);
    }
    let mut scored = hybrid(cands, gucs::weights());
    // Stage 3 on the top N candidates that can be shown (reranking a product the rules drop
    // would waste the model's time).
    let (top_n, lambda) = gucs::rerank();
    let showable = scoring::rerank_targets(&scored, top_n, rules, &req.taken);
    if !showable.is_empty() {
        // Only candidates this request has not reranked yet go to the model.
        let new: Vec<usize> = showable
            .iter()
            .copied()
            .filter(|&i| !req.reranked.contains_key(&scored[i].cand.product_id))
            .collect();
        if !new.is_empty() {
            let docs: Vec<String> = new
                .iter()
                .map(|&i| det[&scored[i].cand.product_id].1.doc.clone())
                .collect();
            let ids: Vec<i64> = new.iter().map(|&i| scored[i].cand.product_id).collect();
            let r = rerank::score(req.query, req.query_vec.as_deref(), &docs, &ids)?;
            req.reranker = r.reranker;
            if let Some(v) = r.query_vec {
                if let Some(u) = user_id {
                    profile::store_query_embedding(u, &v)?;
                }
                req.query_vec = Some(v);
            }
            req.reranked.extend(ids.into_iter().zip(r.scores));
        }
        for &i in &showable {
            scored[i].rerank = req.reranked.get(&scored[i].cand.product_id).copied();
        }
        blend_rerank(&mut scored, lambda);
    }
    let reranker = req.reranker;
    let kept = apply_rules_excluding(scored, req.k, rules, &req.taken);
    Ok(kept
        .into_iter()
        .map(|s| det[&s.cand.product_id].1.rec(s, reranker))
        .collect())
}

/// Cold start and fallbacks: popularity over the window, newest products when there is none.
pub fn popular(k: usize, exclude: &[i64], can_store: bool) -> Result<Vec<Rec>> {
    let want = k * 3 + 50;
    let mut top = popular_top(want, can_store)?;
    if top.len() < k {
        // No (or too little) recent activity: newest in-stock products.
        let newest: Vec<i64> = Spi::connect(|c| {
            let t = plans::select(
                c,
                "SELECT product_id FROM recommender.products WHERE in_stock AND created_at <= recommender.clock()
                  ORDER BY created_at DESC, product_id LIMIT $1",
                None,
                &[(want as i64).into()],
            )?;
            let mut v = Vec::new();
            for r in t {
                v.extend(r.get::<i64>(1)?);
            }
            Ok::<_, RecError>(v)
        })?;
        for id in newest {
            if !top.iter().any(|t| t.0 == id) {
                top.push((id, 0.0));
            }
        }
    }
    let ids: Vec<i64> = top
        .iter()
        .map(|t| t.0)
        .filter(|id| !exclude.contains(id))
        .collect();
    let det = details(&ids, None, None)?;
    let mut cands = Vec::new();
    for (id, p) in &top {
        if let Some(d) = det.get(id) {
            let mut c = d.0.clone();
            c.popularity = *p;
            c.sources = source::POPULAR;
            cands.push(c);
        }
    }
    let w = scoring::Weights {
        alpha: 0.0,
        beta: 0.0,
        gamma: 1.0,
    };
    let kept = apply_rules(hybrid(cands, w), k, gucs::rules());
    Ok(kept
        .into_iter()
        .map(|s| det[&s.cand.product_id].1.rec(s, "none"))
        .collect())
}

/// The most popular products over the window before the clock. Ranking every product of the
/// window costs ~50 ms on Complete Journey, so the top 1,000 are cached per (clock day, window)
/// for POPULAR_TTL; callers that may not write (STABLE functions) read a fresh cache or compute,
/// and so does every caller on a standby or in a read-only transaction.
fn popular_top(want: usize, can_store: bool) -> Result<Vec<(i64, f64)>> {
    const CACHED: usize = 1000;
    let (window, _) = gucs::windows();
    // SAFETY: backend-global state. The cache is UNLOGGED, so a standby cannot read it.
    let in_recovery = unsafe { pg_sys::RecoveryInProgress() };
    if want <= CACHED && !in_recovery {
        let hit = pairs(
            "SELECT product_id, score FROM recommender.popular_cache
              WHERE clock_day = recommender.clock()::date AND window_days = $1
                AND computed_at > clock_timestamp() - interval '5 minutes'
              ORDER BY score DESC, product_id LIMIT $2",
            &[window.into(), (want as i64).into()],
        )?;
        if !hit.is_empty() {
            return Ok(hit);
        }
    }
    let top = pairs(
        "SELECT d.product_id, sum(d.weight)::float8
           FROM recommender.product_daily d
          WHERE d.day > (recommender.clock() - make_interval(days => $1))::date
            AND d.day <= recommender.clock()::date
          GROUP BY 1 HAVING sum(d.weight) > 0
          ORDER BY 2 DESC, 1 LIMIT $2",
        &[window.into(), (want.max(CACHED) as i64).into()],
    )?;
    if can_store && can_write() && !top.is_empty() {
        let ids: Vec<i64> = top.iter().map(|t| t.0).collect();
        let scores: Vec<f64> = top.iter().map(|t| t.1).collect();
        Spi::run_with_args(
            "DELETE FROM recommender.popular_cache
              WHERE (clock_day = recommender.clock()::date AND window_days = $1)
                 OR computed_at < clock_timestamp() - interval '1 day'",
            &[window.into()],
        )?;
        Spi::run_with_args(
            "INSERT INTO recommender.popular_cache (clock_day, window_days, product_id, score, computed_at)
             SELECT recommender.clock()::date, $1, u.id, u.s, clock_timestamp() FROM unnest($2::bigint[], $3::float8[]) u(id, s)
             ON CONFLICT DO NOTHING",
            &[window.into(), ids.into(), scores.into()],
        )?;
    }
    Ok(top.into_iter().take(want).collect())
}

/// Stage 1, content: nearest in-stock products to `centre` through the HNSW index (the calling
/// function runs with hnsw.iterative_scan, so filtered rows do not starve it). When the index
/// scan still comes back short (many dead or concurrently inserted index entries reach
/// hnsw.max_scan_tuples) and more eligible products exist, the answer is computed exactly.
fn content_neighbours(centre: &[f32], n: usize, exclude: &[i64]) -> Result<Vec<(i64, f64)>> {
    content_neighbours_in(centre, n, exclude, &[])
}

/// The same, leaving out products of the `skip_categories`.
fn content_neighbours_in(
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
        "SELECT product_id, 1 - (embedding OPERATOR(@vector@.<=>) $1::real[]::@vector@.vector) FROM recommender.products
          WHERE in_stock AND NOT (product_id = ANY($3)) AND (category IS NULL OR NOT (category = ANY($4)))
          ORDER BY embedding OPERATOR(@vector@.<=>) $1::real[]::@vector@.vector LIMIT $2",
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
        "SELECT product_id, 1 - (embedding OPERATOR(@vector@.<=>) $1::real[]::@vector@.vector) FROM recommender.products
          WHERE in_stock AND embedding IS NOT NULL AND NOT (product_id = ANY($3))
            AND (category IS NULL OR NOT (category = ANY($4)))
          ORDER BY (embedding OPERATOR(@vector@.<=>) $1::real[]::@vector@.vector) + 0, product_id LIMIT $2",
        &args(),
    )
}

/// Stage 1, similar users: users who interacted with the same products as this user (through
/// the user's 20 most recent products, at most 100 users each), then the 100 strongest products
/// of the 20 most overlapping users, weighted by overlap and their own interaction weight.
fn similar_users_products(user_id: &str, n: usize) -> Result<Vec<(i64, f64)>> {
    pairs(
        "WITH mine AS (
             SELECT product_id FROM recommender.user_products
              WHERE user_id = $1 AND weight > 0 AND last_at <= recommender.clock()
              ORDER BY last_at DESC, product_id LIMIT 20),
         neighbours AS (
             SELECT o.user_id, count(*) AS overlap
               FROM mine m
               CROSS JOIN LATERAL (SELECT u.user_id FROM recommender.user_products u
                                    WHERE u.product_id = m.product_id AND u.user_id <> $1 AND u.weight > 0
                                    ORDER BY u.weight DESC LIMIT 100) o
              GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20)
         SELECT u.product_id, sum(n.overlap * ln(1 + u.weight))::float8
           FROM neighbours n
           CROSS JOIN LATERAL (SELECT p.product_id, p.weight FROM recommender.user_products p
                                WHERE p.user_id = n.user_id AND p.weight > 0
                                ORDER BY p.weight DESC LIMIT 100) u
          WHERE u.product_id NOT IN (SELECT product_id FROM mine)
          GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2",
        &[user_id.into(), (n as i64).into()],
    )
}

/// Stage 1, co-purchase with the user's 10 most recent purchases.
fn copurchase_of_user(user_id: &str, n: usize) -> Result<Vec<(i64, f64)>> {
    let recent: Vec<i64> = pairs(
        "SELECT product_id, 0::float8 FROM recommender.user_products
          WHERE user_id = $1 AND purchases > 0 AND last_at <= recommender.clock()
          ORDER BY last_at DESC, product_id LIMIT 10",
        &[user_id.into()],
    )?
    .into_iter()
    .map(|p| p.0)
    .collect();
    copurchase_of(&recent, n)
}

/// Products bought in the same baskets as any of `items`, by number of shared baskets.
fn copurchase_of(items: &[i64], n: usize) -> Result<Vec<(i64, f64)>> {
    if items.is_empty() || n == 0 {
        return Ok(Vec::new());
    }
    pairs(
        "SELECT c.product_b, sum(c.baskets)::float8 FROM unnest($1::bigint[]) AS a(id)
           CROSS JOIN LATERAL (SELECT product_b, baskets FROM recommender.copurchase
                                WHERE product_a = a.id AND baskets > 0 ORDER BY baskets DESC LIMIT 200) c
          WHERE NOT (c.product_b = ANY($1))
          GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2",
        &[items.to_vec().into(), (n as i64).into()],
    )
}

fn pairs_text(sql: &'static str, args: &[pgrx::datum::DatumWithOid]) -> Result<Vec<String>> {
    Spi::connect(|c| {
        let t = plans::select(c, sql, None, args)?;
        let mut v = Vec::new();
        for r in t {
            v.extend(r.get::<String>(1)?);
        }
        Ok(v)
    })
}

/// The first column of the first row, read-only. (pgrx's `Spi::get_one*` go through
/// `connect_mut`, which assigns a transaction id: an error on a hot standby.)
fn one<T: FromDatum + IntoDatum>(
    sql: &'static str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Option<T>> {
    Ok(Spi::connect(|c| {
        plans::select(c, sql, Some(1), args)?.first().get_one::<T>()
    })?)
}

fn pairs(sql: &'static str, args: &[pgrx::datum::DatumWithOid]) -> Result<Vec<(i64, f64)>> {
    Spi::connect(|c| {
        let t = plans::select(c, sql, None, args)?;
        let mut v = Vec::new();
        for r in t {
            v.push((
                r.get::<i64>(1)?.unwrap_or(0),
                r.get::<f64>(2)?.unwrap_or(0.0),
            ));
        }
        Ok(v)
    })
}

/// Popularity of the candidates over the window before the clock.
fn popularity(ids: &[i64]) -> Result<HashMap<i64, f64>> {
    let (window, _) = gucs::windows();
    Ok(pairs(
        "SELECT product_id, sum(weight)::float8 FROM recommender.product_daily
          WHERE product_id = ANY($1)
            AND day > (recommender.clock() - make_interval(days => $2))::date AND day <= recommender.clock()::date
          GROUP BY 1",
        &[ids.to_vec().into(), window.into()],
    )?
    .into_iter()
    .collect())
}

/// Display fields and rule inputs of products.
pub struct Detail {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price: Option<AnyNumeric>,
    pub image_url: Option<String>,
    pub doc: String,
}

pub struct DetailRow(pub Candidate, pub Detail);

impl DetailRow {
    fn to_rec(&self, score: f64, content: f64, collab: f64, src: u8) -> Rec {
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
    fn rec(&self, s: Scored, reranker: &'static str) -> Rec {
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

/// Details of `ids`; content similarity to `centre` when given; purchased flag for `user_id`.
fn details(
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
                    (extract(epoch FROM recommender.clock() - p.created_at) / 86400.0)::float8,
                    CASE WHEN $2::real[] IS NULL OR p.embedding IS NULL THEN 0
                         ELSE 1 - (p.embedding OPERATOR(@vector@.<=>) $2::real[]::@vector@.vector) END::float8,
                    EXISTS (SELECT 1 FROM recommender.user_products u
                             WHERE u.user_id = $3 AND u.product_id = p.product_id AND u.purchases > 0),
                    recommender._rerank_doc(p.name, p.category, p.description)
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
                doc: r.get::<String>(11)?.unwrap_or_default(),
            };
            m.insert(id, DetailRow(cand, det));
        }
        Ok(m)
    })
}

/// A cart's resolved items.
struct CartCentre {
    /// The ids that exist (others are reported in a NOTICE).
    found: Vec<i64>,
    /// Up to five of their names (the reranker's query).
    names: Vec<String>,
    /// The normalised mean of their embeddings.
    centre: Option<Vec<f32>>,
}

fn cart_centre(items: &[i64]) -> Result<CartCentre> {
    let rows: Vec<(i64, Option<String>, Option<Vec<f32>>)> = Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT product_id, name, embedding::real[] FROM recommender.products WHERE product_id = ANY($1) ORDER BY product_id",
            None,
            &[items.to_vec().into()],
        )?;
        let mut v = Vec::new();
        for r in t {
            v.push((
                r.get::<i64>(1)?.unwrap_or(0),
                r.get::<String>(2)?,
                r.get::<Vec<f32>>(3)?,
            ));
        }
        Ok::<_, RecError>(v)
    })?;
    let found: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let missing: Vec<String> = items
        .iter()
        .filter(|i| !found.contains(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        let shown = missing
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        pgrx::notice!(
            "recommender: ignoring {} unknown product id(s): {shown}",
            missing.len()
        );
    }
    let mut acc = vec![0f64; crate::model::DIM];
    let mut any = false;
    for e in rows.iter().filter_map(|r| r.2.as_ref()) {
        any = true;
        acc.iter_mut().zip(e).for_each(|(a, &x)| *a += x as f64);
    }
    let names = rows.iter().filter_map(|r| r.1.clone()).take(5).collect();
    Ok(CartCentre {
        found,
        names,
        centre: any.then(|| crate::core::pooling::normalize(&acc)),
    })
}
