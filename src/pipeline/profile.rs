//! User preference vectors: normalised Σ weight(type) × exp(−age/decay) × embedding, plus the
//! user's top categories, price range and interaction count.
//!
//! Freshness: a profile is rebuilt lazily, on the next call that needs it, when the user has an
//! interaction newer than the one it was built from, or the weights table changed. Because the
//! decay is exponential, exp(−(T − t)/τ) = exp(−T/τ)·exp(t/τ): the clock T is a common factor that
//! normalisation removes, so a profile does not go stale as time passes. With
//! `recommender.as_of` set (a replayed clock) the profile is built from the interactions at or
//! before it. The cache key is (number of interactions at the clock, newest interaction id,
//! weights version): the sets of interactions at two clocks are nested, so equal counts mean equal
//! sets, and a new or deleted interaction changes the key.
//!
//! The user's collaborative candidates are kept with the profile (`store_collab`) and survive its
//! rebuild while the user's purchases are the ones they were computed from and none came from
//! similar users (`keeps_collab`): repeat, the item model and co-purchase read purchases only.
use pgrx::prelude::*;

use super::db::{can_write, one};
use super::plans;
use crate::error::{RecError, Result};
use crate::gucs;
use crate::model::DIM;
use recommender_core::limits::PROFILE_INTERACTIONS;
use recommender_core::pooling::weighted_mean;
use recommender_core::scoring::{decay, source};

#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub preference: Option<Vec<f32>>,
    pub top_categories: Vec<String>,
    pub interaction_count: i64,
    /// The reranker's query: top categories and the names of the most recent products.
    pub query: String,
    /// The query's bi-encoder embedding, once a call has made it.
    pub query_embedding: Option<Vec<f32>>,
    /// Collaborative candidates (product, normalised score, source bits) while still fresh
    /// (`recommender.collaborative_cache_seconds`, same clock and candidate count).
    pub collab: Option<Vec<(i64, f64, u8)>>,
}

/// The reranker's query for a profile.
fn query_of(top_categories: &[String], recent_names: &[String]) -> String {
    let mut q = String::new();
    if !top_categories.is_empty() {
        q.push_str(&format!("Interested in {}.", top_categories.join(", ")));
    }
    if !recent_names.is_empty() {
        q.push_str(&format!(" Recently: {}.", recent_names.join("; ")));
    }
    q.trim().to_string()
}

/// The replayed clock, or NULL for the live one: collaborative candidates are reused only at the
/// clock they were computed at.
const REPLAY_CLOCK: &str = "nullif(current_setting('recommender.as_of', true), '')::timestamptz";

/// The cached profile, valid only for the user's current interactions and weights.
static CACHED_PROFILE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT preference::real[], top_categories, interaction_count, rerank_query, query_embedding::real[],
                collab_ids IS NOT NULL AND collab_n = $5 AND collab_clock IS NOT DISTINCT FROM {REPLAY_CLOCK}
                  AND collab_at > clock_timestamp() - make_interval(secs => $6),
                collab_ids, collab_scores, collab_sources
           FROM recommender.user_profiles
          WHERE user_id = $1 AND last_interaction_id = $2 AND interaction_count = $3 AND weights_version = $4"
    )
});

/// The cache key of a user's profile at the clock: (newest interaction id, number of
/// interactions, weights version). One kept statement: this runs on every homepage call.
const PROFILE_KEY: &str = "SELECT max(interaction_id), count(*),
        (SELECT md5(string_agg(type::text || '=' || weight::text, ',' ORDER BY type))
           FROM recommender.interaction_weights)
   FROM recommender.interactions
  WHERE user_id = $1 AND occurred_at <= (SELECT recommender.clock())";

fn key(user_id: &str) -> Result<(Option<i64>, i64, String)> {
    Spi::connect(|c| {
        let (last, count, version) = plans::select(c, PROFILE_KEY, None, &[user_id.into()])?
            .first()
            .get_three::<i64, i64, String>()?;
        Ok((last, count.unwrap_or(0), version.unwrap_or_default()))
    })
}

/// The user's profile, rebuilt if stale. None: the user has no interactions (cold start).
pub fn get(user_id: &str) -> Result<Option<Profile>> {
    let (last_id, count, version) = key(user_id)?;
    let Some(last_id) = last_id else {
        return Ok(None);
    };
    if let Some(p) = cached(user_id, last_id, count, &version)? {
        return Ok(Some(p));
    }
    let (computed, kept) = compute(user_id, last_id, count, &version)?;
    if kept {
        // the rebuild kept the collaborative candidates (the user's purchases are unchanged)
        if let Some(p) = cached(user_id, last_id, count, &version)? {
            return Ok(Some(p));
        }
    }
    Ok(Some(computed))
}

/// The stored profile when it is current for this key, with its collaborative candidates while
/// they are fresh.
fn cached(user_id: &str, last_id: i64, count: i64, version: &str) -> Result<Option<Profile>> {
    let (_, n_collab) = gucs::candidate_counts();
    let cached = Spi::connect(|c| {
        let t = plans::select(
            c,
            &CACHED_PROFILE,
            None,
            &[
                user_id.into(),
                last_id.into(),
                count.into(),
                version.into(),
                (n_collab as i32).into(),
                (gucs::collaborative_cache_seconds() as f64).into(),
            ],
        )?;
        let mut out = None;
        for row in t {
            let top = row.get::<Vec<String>>(2)?.unwrap_or_default();
            let query = row.get::<String>(4)?.unwrap_or_default();
            let collab = if row.get::<bool>(6)?.unwrap_or(false) {
                let ids = row.get::<Vec<i64>>(7)?.unwrap_or_default();
                let scores = row.get::<Vec<f64>>(8)?.unwrap_or_default();
                let sources = row.get::<Vec<i32>>(9)?.unwrap_or_default();
                Some(
                    ids.into_iter()
                        .zip(scores)
                        .zip(sources)
                        .map(|((i, s), b)| (i, s, b as u8))
                        .collect(),
                )
            } else {
                None
            };
            out = Some(Profile {
                preference: row.get::<Vec<f32>>(1)?,
                top_categories: top,
                interaction_count: row.get::<i64>(3)?.unwrap_or(0),
                query,
                query_embedding: row.get::<Vec<f32>>(5)?,
                collab,
            });
        }
        Ok::<_, RecError>(out)
    })?;
    if let Some(mut p) = cached {
        if p.query.is_empty() {
            // a profile cached by 0.1.0 has no query yet
            p.query = query_of(&p.top_categories, &recent_names(user_id)?);
        }
        return Ok(Some(p));
    }
    Ok(None)
}

/// Rebuilds one profile now (live clock) and returns its interaction count.
pub fn rebuild(user_id: &str) -> Result<i64> {
    if !can_write() {
        return Err(RecError::ReadOnly {
            message: "rebuild_user_profile() stores a profile and cannot run on a standby or in a read-only transaction".into(),
            hint: "homepage() computes the profile without storing it there; rebuild on the primary.".into(),
        });
    }
    let (last, count, version) = key(user_id)?;
    match last {
        Some(l) => Ok(compute(user_id, l, count, &version)?.0.interaction_count),
        None => {
            Spi::run_with_args(
                "DELETE FROM recommender.user_profiles WHERE user_id = $1",
                &[user_id.into()],
            )?;
            Ok(0)
        }
    }
}

fn recent_names(user_id: &str) -> Result<Vec<String>> {
    Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT p.name FROM recommender.user_products u JOIN recommender.products p USING (product_id)
              WHERE u.user_id = $1 AND u.weight > 0 AND u.last_at <= (SELECT recommender.clock())
              ORDER BY u.last_at DESC, p.product_id LIMIT 3",
            None,
            &[user_id.into()],
        )?;
        let mut v = Vec::new();
        for row in t {
            if let Some(n) = row.get::<String>(1)? {
                v.push(n);
            }
        }
        Ok(v)
    })
}

/// Builds the profile from the user's `PROFILE_INTERACTIONS` most recent interactions at the
/// clock (older ones weigh exp(−age/τ) less: a user with millions of interactions, a bot, costs
/// no more than that). `count` is the cache key's count of all of them.
/// Returns it, and whether the stored collaborative candidates were kept (`keeps_collab`).
fn compute(user_id: &str, last_id: i64, count: i64, version: &str) -> Result<(Profile, bool)> {
    let (_, tau) = gucs::windows();
    struct Row {
        days: f64,
        w: f64,
        emb: Option<Vec<f32>>,
        cat: Option<String>,
        price: Option<f64>,
    }
    let rows: Vec<Row> = Spi::connect(|c| {
        let t = plans::select(
            c,
            // The most recent interactions first, narrow; then their products' wide rows (sorting
            // those took ~1 ms of 5 for a household with 233 interactions).
            "SELECT (extract(epoch FROM i.occurred_at) / 86400.0)::float8, w.weight, p.embedding::real[], p.category, p.price::float8
               FROM (SELECT product_id, type, occurred_at, interaction_id FROM recommender.interactions
                      WHERE user_id = $1 AND occurred_at <= (SELECT recommender.clock())
                      ORDER BY occurred_at DESC, interaction_id DESC LIMIT $2) i
               JOIN recommender.products p USING (product_id)
               LEFT JOIN recommender.interaction_weights w ON w.type = i.type
              ORDER BY i.occurred_at DESC, i.interaction_id DESC",
            None,
            &[user_id.into(), (PROFILE_INTERACTIONS as i64).into()],
        )?;
        let mut v = Vec::new();
        for r in t {
            v.push(Row {
                days: r.get::<f64>(1)?.unwrap_or(0.0),
                w: r.get::<f64>(2)?.unwrap_or(0.0),
                emb: r.get::<Vec<f32>>(3)?,
                cat: r.get::<String>(4)?,
                price: r.get::<f64>(5)?,
            });
        }
        Ok::<_, RecError>(v)
    })?;
    let newest = rows
        .iter()
        .map(|r| r.days)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut cats: std::collections::HashMap<String, f64> = Default::default();
    let (mut pmin, mut pmax) = (f64::INFINITY, f64::NEG_INFINITY);
    // ages relative to the newest interaction: the clock cancels out after normalising
    let wd = |r: &Row| r.w * decay(newest - r.days, tau);
    for r in rows.iter().filter(|r| wd(r) > 0.0) {
        if let Some(c) = &r.cat {
            *cats.entry(c.clone()).or_default() += wd(r);
        }
        if let Some(p) = r.price {
            pmin = pmin.min(p);
            pmax = pmax.max(p);
        }
    }
    let vectors = rows
        .iter()
        .filter_map(|r| r.emb.as_deref().map(|e| (wd(r), e)));
    let preference = weighted_mean(vectors, DIM);
    let mut cats: Vec<(String, f64)> = cats.into_iter().collect();
    cats.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    });
    let top: Vec<String> = cats.into_iter().take(3).map(|c| c.0).collect();
    let query = query_of(&top, &recent_names(user_id)?);
    let mut kept = false;
    if can_write() {
        let current = has_purchase_key()?;
        kept = current && keeps_collab(user_id)?;
        let collab = if current {
            "collab_ids = CASE WHEN $10 THEN u.collab_ids END, collab_scores = CASE WHEN $10 THEN u.collab_scores END,
             collab_sources = CASE WHEN $10 THEN u.collab_sources END, collab_n = CASE WHEN $10 THEN u.collab_n END,
             collab_clock = CASE WHEN $10 THEN u.collab_clock END, collab_at = CASE WHEN $10 THEN u.collab_at END,
             collab_purchases = CASE WHEN $10 THEN u.collab_purchases END,
             collab_last_purchase = CASE WHEN $10 THEN u.collab_last_purchase END"
        } else {
            "collab_ids = NULL, collab_scores = NULL, collab_sources = NULL, collab_n = NULL,
             collab_clock = NULL, collab_at = NULL"
        };
        let mut args: Vec<pgrx::datum::DatumWithOid> = vec![
            user_id.into(),
            preference.clone().into(),
            top.clone().into(),
            pmin.is_finite().then_some(pmin).into(),
            pmax.is_finite().then_some(pmax).into(),
            count.into(),
            last_id.into(),
            version.into(),
            query.as_str().into(),
        ];
        if current {
            args.push(kept.into());
        }
        Spi::run_with_args(
            &format!("INSERT INTO recommender.user_profiles AS u
                    (user_id, preference, top_categories, price_min, price_max, interaction_count,
                     last_interaction_id, last_interaction_at, weights_version, computed_at, rerank_query)
             VALUES ($1, $2::real[], $3, $4, $5, $6, $7,
                     (SELECT occurred_at FROM recommender.interactions WHERE interaction_id = $7), $8, now(), $9)
             ON CONFLICT (user_id) DO UPDATE SET
                preference = EXCLUDED.preference, top_categories = EXCLUDED.top_categories,
                price_min = EXCLUDED.price_min, price_max = EXCLUDED.price_max,
                interaction_count = EXCLUDED.interaction_count, last_interaction_id = EXCLUDED.last_interaction_id,
                last_interaction_at = EXCLUDED.last_interaction_at, weights_version = EXCLUDED.weights_version,
                computed_at = now(), rerank_query = EXCLUDED.rerank_query, query_embedding = NULL,
                {collab}"),
            &args,
        )?;
    }
    Ok((
        Profile {
            preference,
            top_categories: top,
            interaction_count: count,
            query,
            query_embedding: None,
            collab: None,
        },
        kept,
    ))
}

/// The user's purchases at the clock as the collaborative candidates read them (repeat, item
/// model, co-purchase): (how many purchase interactions, the newest one's id).
const PURCHASES: &str = "SELECT count(*), max(interaction_id) FROM recommender.interactions
  WHERE user_id = $1 AND type = 'PURCHASE' AND occurred_at <= (SELECT recommender.clock())";

/// The user's purchases at the clock (`PURCHASES`).
pub fn purchases(user_id: &str) -> Result<(i64, Option<i64>)> {
    Spi::connect(|c| {
        let (n, last) = plans::select(c, PURCHASES, None, &[user_id.into()])?
            .first()
            .get_two::<i64, i64>()?;
        Ok((n.unwrap_or(0), last))
    })
}

/// Whether the schema keeps the purchases the collaborative candidates came from (0.10.0; the
/// library may run before ALTER EXTENSION UPDATE).
fn has_purchase_key() -> Result<bool> {
    Ok(one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
                         WHERE attrelid = 'recommender.user_profiles'::pg_catalog.regclass
                           AND attname = 'collab_purchases' AND NOT attisdropped)",
        &[],
    )?
    .unwrap_or(false))
}

/// Whether a rebuilt profile keeps its stored collaborative candidates: the user's purchases are
/// the ones they were computed from (a new interaction was a view or a cart add), and none came
/// from similar users (whose neighbourhoods every interaction changes). Their own clock,
/// candidate count and age are checked where they are read, as before.
fn keeps_collab(user_id: &str) -> Result<bool> {
    static KEEPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT u.collab_ids IS NOT NULL AND u.collab_purchases = k.count
                    AND u.collab_last_purchase IS NOT DISTINCT FROM k.max
                    AND NOT EXISTS (SELECT FROM unnest(u.collab_sources) b WHERE b & $2 <> 0)
               FROM recommender.user_profiles u, ({PURCHASES}) k
              WHERE u.user_id = $1"
        )
    });
    Spi::connect(|c| {
        let mut keep = false;
        for r in c.select(
            KEEPS.as_str(),
            None,
            &[user_id.into(), (source::SIMILAR_USERS as i32).into()],
        )? {
            keep = r.get::<bool>(1)?.unwrap_or(false);
        }
        Ok::<_, RecError>(keep)
    })
}

/// Keeps a user's collaborative candidates with the profile (homepage is VOLATILE; it may write),
/// unless the server cannot take a write here (standby, read-only transaction).
/// `bought` is the user's purchases (`purchases`) read before the candidates were computed.
pub fn store_collab(
    user_id: &str,
    collab: &[(i64, f64, u8)],
    n: usize,
    bought: (i64, Option<i64>),
) -> Result<()> {
    if !can_write() {
        return Ok(());
    }
    let mut args: Vec<pgrx::datum::DatumWithOid> = vec![
        user_id.into(),
        collab.iter().map(|c| c.0).collect::<Vec<i64>>().into(),
        collab.iter().map(|c| c.1).collect::<Vec<f64>>().into(),
        collab
            .iter()
            .map(|c| c.2 as i32)
            .collect::<Vec<i32>>()
            .into(),
        (n as i32).into(),
    ];
    let purchase_key = if has_purchase_key()? {
        args.push(bought.0.into());
        args.push(bought.1.into());
        ", collab_purchases = $6, collab_last_purchase = $7"
    } else {
        ""
    };
    Spi::run_with_args(
        &format!(
            "UPDATE recommender.user_profiles
                SET collab_ids = $2, collab_scores = $3, collab_sources = $4, collab_n = $5,
                    collab_clock = {REPLAY_CLOCK}, collab_at = clock_timestamp(){purchase_key}
              WHERE user_id = $1"
        ),
        &args,
    )?;
    Ok(())
}

/// Keeps the bi-encoder embedding of the user's rerank query with the profile, when the server
/// can take a write here.
pub fn store_query_embedding(user_id: &str, v: &[f32]) -> Result<()> {
    if !can_write() {
        return Ok(());
    }
    Spi::run_with_args(
        "UPDATE recommender.user_profiles SET query_embedding = $2::real[] WHERE user_id = $1",
        &[user_id.into(), v.to_vec().into()],
    )?;
    Ok(())
}
