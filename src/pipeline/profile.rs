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
//! A profile keeps its running sums (`recommender_core::profile::State`: the preference's norm
//! and reference day, every category's weight). A user's new interactions are added to them
//! (`update`) instead of the profile being rebuilt from all of them, which equals the rebuild up
//! to rounding (a pg_test compares the two) while the products keep their embeddings, categories
//! and prices. Whatever a product change may have made stale goes at the first refresh more than
//! `recommender.profile_rebuild_seconds` after the last full rebuild: it checks the products
//! (`VERIFY`: the sums keep `sums_check`, a sum over the interactions they were made from of
//! a hash of each one and of its product's category, price and embedding) and rebuilds only
//! when something changed, else updates and restarts the interval (0.19.0; ~6 ms for a
//! household with 4,000 interactions, where a rebuild reads for ~40 ms). A refresh
//! also rebuilds in full after an interaction with a product that had no embedding yet, after an
//! UPDATE or DELETE of the user's interactions (their trigger clears `full_at`, and
//! `weights_version`, so that the next call misses the cached profile even when an UPDATE kept
//! the key's count and newest id, 0.21.0; a refresh stores
//! nothing over a row that another transaction changed after it read the interactions, such as
//! that trigger's commit, and never waits for a row another transaction holds: 0.26.0,
//! `give_way`), and whenever the
//! rows read are not the stored ones plus exactly those the key adds (`matches_key`: another
//! transaction committed one meanwhile, the clock moved back, more than `PROFILE_INTERACTIONS`).
//!
//! The user's collaborative candidates are kept with the profile (`store_collab`) and survive its
//! rebuild while the user's purchases are the ones they were computed from and none came from
//! similar users (`keeps_collab`): repeat, the item model and co-purchase read purchases only.
//! They are fresh for `recommender.collaborative_cache_seconds`; a list that only the item model
//! and repeat supplied stays exact until the model is built again (`collab_model`), so it is
//! reused however old it is: a repeat visit an hour later runs no source.
use pgrx::prelude::*;

use super::db::can_write;
use super::{give_way, plans};
use crate::error::{RecError, Result};
use crate::gucs;
use crate::model::DIM;
use recommender_core::limits::PROFILE_INTERACTIONS;
use recommender_core::profile::{Event, State};
use recommender_core::scoring::source;

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
    /// The user's purchases at the clock (`purchases`), when this call's rebuild read them.
    pub purchases: Option<(i64, Option<i64>)>,
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

/// The cached profile, valid only for the user's current interactions and weights: without and
/// with the item model key (`Schema::model_key`). The collaborative candidates are fresh for
/// `$6` seconds (`collaborative_cache_seconds`, 0: never), and candidates from the item model and
/// repeat alone (`collab_model`) until the model is built again, whatever their age.
static CACHED_PROFILE: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
    let statement = |model: &str| {
        format!(
            "SELECT preference::real[], top_categories, interaction_count, rerank_query, query_embedding::real[],
                    collab_ids IS NOT NULL AND collab_n = $5 AND collab_clock IS NOT DISTINCT FROM {REPLAY_CLOCK}
                      AND $6 > 0 AND (collab_at > clock_timestamp() - make_interval(secs => $6){model}),
                    collab_ids, collab_scores, collab_sources
               FROM recommender.user_profiles
              WHERE user_id = $1 AND last_interaction_id = $2 AND interaction_count = $3 AND weights_version = $4"
        )
    };
    [
        statement(""),
        statement(&format!(" OR collab_model = ({MODEL_BUILD})")),
    ]
});

/// The item model's current build (`recommender.item_model_builds`): NULL before the first.
const MODEL_BUILD: &str = "SELECT max(build_id) FROM recommender.item_model_builds";

/// The cache key of a user's profile at the clock: (newest interaction id, number of
/// interactions, weights version). One kept statement: this runs on every homepage call.
const PROFILE_KEY: &str = "SELECT max(interaction_id), count(*),
        (SELECT md5(string_agg(type::text || '=' || weight::text, ',' ORDER BY type))
           FROM recommender.interaction_weights)
   FROM recommender.interactions
  WHERE user_id = $1 AND occurred_at <= (SELECT recommender.clock())";

/// The key's version names the decay too: a profile (and its running sums) made with another
/// `recommender.decay_days` is rebuilt; and `recommender.item_model_recency` when set (0.25.0), so
/// that the collaborative candidates kept with the profile were weighed with the value in force
/// (unset, the version is the one earlier releases stored).
fn key(user_id: &str) -> Result<(Option<i64>, i64, String)> {
    let (_, tau) = gucs::windows();
    let recency = match gucs::item_model_recency() {
        0 => String::new(),
        n => format!("/recency {n}"),
    };
    Spi::connect(|c| {
        let (last, count, weights) = plans::select(c, PROFILE_KEY, None, &[user_id.into()])?
            .first()
            .get_three::<i64, i64, String>()?;
        Ok((
            last,
            count.unwrap_or(0),
            format!("{}/{tau}{recency}", weights.unwrap_or_default()),
        ))
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
    let (computed, kept) = compute(user_id, last_id, count, &version, false)?;
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
    let model_key = schema()?.model_key;
    let cached = Spi::connect(|c| {
        let t = plans::select(
            c,
            &CACHED_PROFILE[model_key as usize],
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
                purchases: None,
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

/// Rebuilds one profile now (live clock) from all of the user's interactions and returns its
/// interaction count.
pub fn rebuild(user_id: &str) -> Result<i64> {
    if !can_write() {
        return Err(RecError::ReadOnly {
            message: "rebuild_user_profile() stores a profile and cannot run on a standby or in a read-only transaction".into(),
            hint: "homepage() computes the profile without storing it there; rebuild on the primary.".into(),
        });
    }
    let (last, count, version) = key(user_id)?;
    match last {
        Some(l) => Ok(compute(user_id, l, count, &version, true)?
            .0
            .interaction_count),
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

/// One interaction as the profile query returns it.
struct Row {
    id: i64,
    /// `PRODUCT_CHECK` of its product.
    check: i64,
    days: f64,
    w: f64,
    emb: Option<Vec<f32>>,
    cat: Option<String>,
    price: Option<f64>,
}

/// An interaction's part of `sums_check`: a hash of its id, type and time (alias `i`). With it
/// the check also tells a changed interaction apart (an UPDATE whose mark on the profile a
/// concurrent refresh overwrote), and a set with the same count but other ids (an interaction
/// committed late, the clock moved back).
const INTERACTION_CHECK: &str =
    "hashtext(format('%s %s %s', i.interaction_id, i.type, extract(epoch FROM i.occurred_at)))";

/// A product's part (alias `p`): a hash of its id, what a profile reads of it (category, price)
/// and of its embedding's time and text hash (every write of an embedding sets both; the time
/// is the transaction's, the text hash tells apart two embeddings made in one transaction). Not
/// the text hash alone: the embedded text has a price band, not the price, and collapses the
/// category's whitespace. Numeric and hex text: independent of the session's time zone, float
/// and bytea formats.
const PRODUCT_CHECK: &str = "hashtext(format('%s %L %L %L %L', p.product_id, p.category, p.price,
        extract(epoch FROM p.embedded_at), encode(p.embedded_hash, 'hex')))";

/// The user's interactions at the clock with what the profile reads of their products, newest
/// first: the `$2` most recent (`$3` = 0), or those after interaction id `$3`. The narrow
/// interaction rows are sorted before the products' wide rows are joined (sorting those took
/// ~1 ms of 5 for a household with 233 interactions).
static INTERACTIONS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "
    SELECT (extract(epoch FROM i.occurred_at) / 86400.0)::float8, w.weight, p.embedding::real[], p.category, p.price::float8,
           i.interaction_id, {INTERACTION_CHECK}::int8 + {PRODUCT_CHECK}
      FROM (SELECT product_id, type, occurred_at, interaction_id FROM recommender.interactions
             WHERE user_id = $1 AND occurred_at <= (SELECT recommender.clock()) AND interaction_id > $3
             ORDER BY occurred_at DESC, interaction_id DESC LIMIT $2) i
      JOIN recommender.products p USING (product_id)
      LEFT JOIN recommender.interaction_weights w ON w.type = i.type
     ORDER BY i.occurred_at DESC, i.interaction_id DESC"
    )
});

fn interactions(user_id: &str, limit: i64, after_id: i64) -> Result<Vec<Row>> {
    Spi::connect(|c| {
        let t = plans::select(
            c,
            &INTERACTIONS,
            None,
            &[user_id.into(), limit.into(), after_id.into()],
        )?;
        let mut v = Vec::new();
        for r in t {
            v.push(Row {
                days: r.get::<f64>(1)?.unwrap_or(0.0),
                w: r.get::<f64>(2)?.unwrap_or(0.0),
                // copied from the array in place (a vector has no NULL elements)
                emb: r
                    .get::<pgrx::Array<f32>>(3)?
                    .and_then(|a| a.as_slice().ok().map(<[f32]>::to_vec)),
                cat: r.get::<String>(4)?,
                price: r.get::<f64>(5)?,
                id: r.get::<i64>(6)?.unwrap_or(0),
                check: r.get::<i64>(7)?.unwrap_or(0),
            });
        }
        Ok::<_, RecError>(v)
    })
}

/// The stored running sums, when the profile may be updated from them to `count` interactions:
/// made with this weights version and decay, from fewer interactions, and not marked for a
/// rebuild. With the newest interaction id and the number of interactions they were made from,
/// whether their last full rebuild (or check) is within `recommender.profile_rebuild_seconds`
/// (`$3`), and their `sums_check` (0.19.0; without the column, none).
static STORED_STATE: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
    let statement = |check: &str| {
        format!(
            "SELECT preference::real[], pref_norm, pref_day, categories, category_weights,
                    price_min::float8, price_max::float8, last_interaction_id, interaction_count,
                    full_at > clock_timestamp() - make_interval(secs => $3), {check}
               FROM recommender.user_profiles
              WHERE user_id = $1 AND weights_version = $2 AND pref_day IS NOT NULL
                AND full_at IS NOT NULL AND interaction_count < $4"
        )
    };
    [statement("NULL::bigint"), statement("sums_check")]
});

/// The user's interactions at the clock up to the stored sums' newest (`$2`): how many, and the
/// sum of their `INTERACTION_CHECK` and their products' `PRODUCT_CHECK` now. Equal to what the
/// sums stored: they are the interactions the sums were made from, and their products are as
/// they were read then. Each product is hashed once, times its interactions (5.6–6.1 ms for a
/// household with 4,192 interactions of 1,097 products; 8.6–9.7 hashing both per interaction).
static VERIFY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT sum(i.n)::bigint, (sum(i.h) + sum(i.n * {PRODUCT_CHECK}))::bigint
           FROM (SELECT i.product_id, count(*) AS n, sum({INTERACTION_CHECK}) AS h
                   FROM recommender.interactions i
                  WHERE i.user_id = $1 AND i.occurred_at <= (SELECT recommender.clock()) AND i.interaction_id <= $2
                  GROUP BY i.product_id) i
           JOIN recommender.products p USING (product_id)"
    )
});

/// The stored sums as `update` reads them.
struct Stored {
    state: State,
    last_id: i64,
    count: i64,
    /// Last rebuilt (or checked) within `recommender.profile_rebuild_seconds`.
    fresh: bool,
    check: Option<i64>,
}

/// Sums updated with the user's new interactions (`update`).
struct Updated {
    state: State,
    /// Every new interaction's product had an embedding.
    embedded: bool,
    /// The products were checked (`VERIFY`): the sums equal a rebuild's, the interval restarts.
    verified: bool,
    /// `sums_check` of the updated sums.
    check: Option<i64>,
}

/// The profile's running sums updated with the user's new interactions. None when they must be
/// rebuilt from all interactions: nothing stored that may be updated; the interval passed and a
/// product they read changed (or the sums have no check: stored by 0.18.0 or before, or the
/// interval is 0); interactions that are not the stored ones plus those with newer ids (one
/// deleted, the clock moved back); more than `PROFILE_INTERACTIONS` (the profile then reads the
/// most recent).
fn update(
    user_id: &str,
    last_id: i64,
    count: i64,
    version: &str,
    checks: bool,
) -> Result<Option<Updated>> {
    if count > PROFILE_INTERACTIONS as i64 {
        return Ok(None);
    }
    let interval = gucs::profile_rebuild_seconds();
    let Some(stored) = stored_state(user_id, version, interval, count, checks)? else {
        return Ok(None);
    };
    let verified = !stored.fresh;
    if verified {
        let Some(check) = stored.check.filter(|_| interval > 0) else {
            return Ok(None);
        };
        let now = Spi::connect(|c| {
            plans::select(c, &VERIFY, None, &[user_id.into(), stored.last_id.into()])?
                .first()
                .get_two::<i64, i64>()
        })?;
        if now != (Some(stored.count), Some(check)) {
            return Ok(None);
        }
    }
    let new = count - stored.count;
    let rows = interactions(user_id, new + 1, stored.last_id)?;
    // exactly the key's new interactions (another transaction may have added one since the key
    // was read: each statement here sees the interactions committed when it starts)
    if !matches_key(&rows, new, last_id) {
        return Ok(None);
    }
    let (_, tau) = gucs::windows();
    let mut state = stored.state;
    state.add(&events(&rows), tau);
    Ok(Some(Updated {
        state,
        embedded: rows.iter().all(|r| r.emb.is_some()),
        verified,
        check: stored
            .check
            .map(|c| c + rows.iter().map(|r| r.check).sum::<i64>()),
    }))
}

/// The stored sums (`STORED_STATE`), when this library can update them.
fn stored_state(
    user_id: &str,
    version: &str,
    interval: i32,
    count: i64,
    checks: bool,
) -> Result<Option<Stored>> {
    Spi::connect(|c| {
        let t = plans::select(
            c,
            &STORED_STATE[checks as usize],
            None,
            &[
                user_id.into(),
                version.into(),
                (interval as f64).into(),
                count.into(),
            ],
        )?;
        let mut out = None;
        for r in t {
            let names = r.get::<Vec<String>>(4)?.unwrap_or_default();
            let weights = r.get::<Vec<f64>>(5)?.unwrap_or_default();
            let price = match (r.get::<f64>(6)?, r.get::<f64>(7)?) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            };
            let preference = r.get::<Vec<f32>>(1)?;
            let norm = r.get::<f64>(2)?.unwrap_or(0.0);
            let day = r.get::<f64>(3)?.unwrap_or(f64::NEG_INFINITY);
            // sums that cannot be what this library stored are rebuilt, not updated
            let sound = norm.is_finite()
                && norm >= 0.0
                && day.is_finite()
                && preference.as_ref().is_none_or(|p| p.len() == DIM);
            if sound {
                out = Some(Stored {
                    state: State::stored(
                        preference.as_deref(),
                        norm,
                        day,
                        names.into_iter().zip(weights).collect(),
                        price,
                        DIM,
                    ),
                    last_id: r.get::<i64>(8)?.unwrap_or(0),
                    count: r.get::<i64>(9)?.unwrap_or(0),
                    fresh: r.get::<bool>(10)?.unwrap_or(false),
                    check: r.get::<i64>(11)?,
                });
            }
        }
        Ok::<_, RecError>(out)
    })
}

/// Whether `rows` are `count` interactions whose newest id is the key's `last_id`.
fn matches_key(rows: &[Row], count: i64, last_id: i64) -> bool {
    rows.len() as i64 == count && rows.iter().map(|r| r.id).max() == Some(last_id)
}

fn events(rows: &[Row]) -> Vec<Event<'_>> {
    rows.iter()
        .map(|r| Event {
            day: r.days,
            weight: r.w,
            embedding: r.emb.as_deref(),
            category: r.cat.as_deref(),
            price: r.price,
        })
        .collect()
}

/// Stores a profile, one statement per schema level (`Schema::level`): the collaborative
/// candidates are dropped, or kept when `$10` (`keeps_collab`) with their item model key; the
/// running sums are `$11`–`$14`, and `$15` says whether they were rebuilt in full or checked
/// ('full'), updated ('keep') or must be rebuilt next time (NULL); `$16` is their
/// `sums_check`; the last parameter, with the running sums, is the row's version read before
/// the interactions (`ROW_VERSION`): a row changed since is left as it is.
static UPSERT: std::sync::LazyLock<[String; 5]> = std::sync::LazyLock::new(|| {
    let statement = |collab: &str, sums: (&str, &str, &str)| {
        format!(
            "INSERT INTO recommender.user_profiles AS u
                    (user_id, preference, top_categories, price_min, price_max, interaction_count,
                     last_interaction_id, last_interaction_at, weights_version, computed_at, rerank_query{})
             VALUES ($1, $2::real[], $3, $4, $5, $6, $7,
                     (SELECT occurred_at FROM recommender.interactions WHERE interaction_id = $7), $8, now(), $9{})
             ON CONFLICT (user_id) DO UPDATE SET
                preference = EXCLUDED.preference, top_categories = EXCLUDED.top_categories,
                price_min = EXCLUDED.price_min, price_max = EXCLUDED.price_max,
                interaction_count = EXCLUDED.interaction_count, last_interaction_id = EXCLUDED.last_interaction_id,
                last_interaction_at = EXCLUDED.last_interaction_at, weights_version = EXCLUDED.weights_version,
                computed_at = now(), rerank_query = EXCLUDED.rerank_query, query_embedding = NULL,
                {collab}{}",
            sums.0, sums.1, sums.2
        )
    };
    let dropped = "collab_ids = NULL, collab_scores = NULL, collab_sources = NULL, collab_n = NULL,
             collab_clock = NULL, collab_at = NULL";
    let kept = "collab_ids = CASE WHEN $10 THEN u.collab_ids END, collab_scores = CASE WHEN $10 THEN u.collab_scores END,
             collab_sources = CASE WHEN $10 THEN u.collab_sources END, collab_n = CASE WHEN $10 THEN u.collab_n END,
             collab_clock = CASE WHEN $10 THEN u.collab_clock END, collab_at = CASE WHEN $10 THEN u.collab_at END,
             collab_purchases = CASE WHEN $10 THEN u.collab_purchases END,
             collab_last_purchase = CASE WHEN $10 THEN u.collab_last_purchase END";
    let kept_model = format!("{kept}, collab_model = CASE WHEN $10 THEN u.collab_model END");
    let sums = (
        ", pref_norm, pref_day, categories, category_weights, full_at",
        ", $11, $12, $13, $14, CASE WHEN $15 = 'full' THEN now() END",
        ", pref_norm = $11, pref_day = $12, categories = $13, category_weights = $14,
                full_at = CASE $15 WHEN 'full' THEN now() WHEN 'keep' THEN u.full_at END",
    );
    // stored only over the row version read before the interactions were (`ROW_VERSION`,
    // parameter `$v`): else another transaction changed the row meanwhile and its write stands
    // (an interaction UPDATE's trigger cleared `full_at`, which these sums may miss, so the next
    // refresh rebuilds; a concurrent refresh stored the same or newer sums)
    let unchanged = |v: &str| format!(" WHERE u.xmin::text IS NOT DISTINCT FROM ${v}");
    let plain = format!("{}{}", sums.2, unchanged("16"));
    let checked = (
        format!("{}, sums_check", sums.0),
        format!("{}, $16", sums.1),
        format!("{}, sums_check = $16{}", sums.2, unchanged("17")),
    );
    [
        statement(dropped, ("", "", "")),
        statement(kept, ("", "", "")),
        statement(kept, (sums.0, sums.1, &plain)),
        statement(&kept_model, (sums.0, sums.1, &plain)),
        statement(&kept_model, (&checked.0, &checked.1, &checked.2)),
    ]
});

/// Builds the profile: updated with the user's new interactions (`update`) unless `full`, else
/// from the user's `PROFILE_INTERACTIONS` most recent interactions at the clock (older ones weigh
/// exp(−age/τ) less: a user with millions of interactions, a bot, costs no more than that).
/// `count` is the cache key's count of all of them.
/// Returns it, and whether the stored collaborative candidates were kept (`keeps_collab`).
fn compute(
    user_id: &str,
    last_id: i64,
    count: i64,
    version: &str,
    full: bool,
) -> Result<(Profile, bool)> {
    let schema = schema()?;
    // read before the interactions are (`UPSERT` compares it)
    let row_version = if schema.running_sums && can_write() {
        row_version(user_id)?
    } else {
        None
    };
    let updated = if full || !schema.running_sums {
        None
    } else {
        update(user_id, last_id, count, version, schema.sums_check)?
    };
    // 'full': rebuilt from all interactions now, or updated after the products were checked;
    // 'keep': updated; NULL: rebuild next time (a product without an embedding yet, which a later
    // rebuild will read, or rows that are not the key's)
    let (state, full_at, check) = match updated {
        Some(u) => (
            u.state,
            u.embedded
                .then_some(if u.verified { "full" } else { "keep" }),
            u.check,
        ),
        None => {
            let rows = interactions(user_id, PROFILE_INTERACTIONS as i64, 0)?;
            let mut state = State::empty(DIM);
            let (_, tau) = gucs::windows();
            state.add(&events(&rows), tau);
            // sums an update may start from: every product embedded, and the rows read are the
            // ones the key (stored with them) counts
            let sound = rows.iter().all(|r| r.emb.is_some())
                && matches_key(&rows, count.min(PROFILE_INTERACTIONS as i64), last_id);
            let check = sound.then(|| rows.iter().map(|r| r.check).sum::<i64>());
            (state, sound.then_some("full"), check)
        }
    };
    let preference = state.preference();
    let top = state.top_categories(3);
    let (pmin, pmax) = match state.price {
        Some((lo, hi)) => (Some(lo), Some(hi)),
        None => (None, None),
    };
    let query = query_of(&top, &recent_names(user_id)?);
    let mut kept = false;
    let mut bought = None;
    if can_write() {
        if schema.purchase_key {
            let (keep, purchases) = keeps_collab(user_id, version)?;
            kept = keep;
            bought = Some(purchases);
        }
        let mut args: Vec<pgrx::datum::DatumWithOid> = vec![
            user_id.into(),
            preference.clone().into(),
            top.clone().into(),
            pmin.into(),
            pmax.into(),
            count.into(),
            last_id.into(),
            version.into(),
            query.as_str().into(),
        ];
        if schema.purchase_key {
            args.push(kept.into());
        }
        if schema.running_sums {
            args.push(state.norm().into());
            args.push(state.day.is_finite().then_some(state.day).into());
            args.push(
                state
                    .categories
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<&str>>()
                    .into(),
            );
            args.push(
                state
                    .categories
                    .iter()
                    .map(|c| c.1)
                    .collect::<Vec<f64>>()
                    .into(),
            );
            args.push(full_at.into());
        }
        if schema.sums_check {
            args.push(check.into());
        }
        if schema.running_sums {
            args.push(row_version.into());
        }
        let upsert = || plans::run(&UPSERT[schema.level()], &args);
        if full {
            // an explicit rebuild stores it, waiting for the row as any write does
            upsert()?;
        } else {
            // a refresh on the read path never waits: unstored, the next call refreshes again
            store_row(user_id, true, upsert)?;
        }
    }
    Ok((
        Profile {
            preference,
            top_categories: top,
            interaction_count: count,
            query,
            query_embedding: None,
            collab: None,
            purchases: bought,
        },
        kept,
    ))
}

/// Whether the user's profile row is visible, and whether this transaction now holds it (locked
/// here, or before: a lock of its own is no obstacle). Never waits: a row another transaction
/// holds is skipped.
const LOCK_ROW: &str = "SELECT EXISTS (SELECT FROM recommender.user_profiles WHERE user_id = $1),
        EXISTS (SELECT FROM recommender.user_profiles WHERE user_id = $1 FOR NO KEY UPDATE SKIP LOCKED)";

/// A write of the user's profile row from the read path, which never waits for another
/// transaction (0.26.0): another caller's open transaction may hold the row for as long as it
/// likes. The row is locked first without waiting: when this transaction holds it, the write
/// runs as it is; when another does, it is skipped. Only an insert (no row yet, `inserts`) may
/// meet another transaction's insert of the same user, so it alone runs in `give_way`'s
/// subtransaction; so does any write under REPEATABLE READ or SERIALIZABLE, where locking a row
/// changed since the snapshot is a serialization failure. A batch of calls in one transaction
/// (`SELECT homepage(u, 10) FROM users`) thus takes a subtransaction only for a user's first
/// profile, not for every write. True when it was written.
fn store_row(
    user_id: &str,
    inserts: bool,
    write: impl FnOnce() -> pgrx::spi::SpiResult<()>,
) -> Result<bool> {
    // SAFETY: reads the transaction's isolation level.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        return Ok(give_way::store(write)?);
    }
    let (visible, ours) = plans::run_reading(LOCK_ROW, &[user_id.into()], |t| {
        let (v, o) = t.first().get_two::<bool, bool>()?;
        Ok((v.unwrap_or(false), o.unwrap_or(false)))
    })?;
    match (visible, ours) {
        (_, true) => {
            write()?;
            Ok(true)
        }
        (true, false) => {
            debug1!(
                "recommender: the profile of {user_id} is held by another transaction: not stored"
            );
            Ok(false)
        }
        (false, false) if inserts => Ok(give_way::store(write)?),
        (false, false) => Ok(false),
    }
}

/// The version of the user's stored profile row (its `xmin`), NULL without one.
const ROW_VERSION: &str = "SELECT xmin::text FROM recommender.user_profiles WHERE user_id = $1";

fn row_version(user_id: &str) -> Result<Option<String>> {
    Spi::connect(|c| {
        let mut out = None;
        for row in plans::select(c, ROW_VERSION, None, &[user_id.into()])? {
            out = row.get::<String>(1)?;
        }
        Ok::<_, RecError>(out)
    })
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

/// What the schema's `user_profiles` has (the library may run before ALTER EXTENSION UPDATE).
struct Schema {
    /// The purchases the collaborative candidates came from (0.10.0).
    purchase_key: bool,
    /// The running sums a profile is updated from (0.11.0).
    running_sums: bool,
    /// The item model build the collaborative candidates came from (0.17.0).
    model_key: bool,
    /// The running sums' check of their products (0.19.0).
    sums_check: bool,
}

impl Schema {
    /// 0 before 0.10.0, 1 with the purchase key, 2 with the running sums too, 3 with the item
    /// model key too, 4 with the products check too.
    fn level(&self) -> usize {
        self.purchase_key as usize
            + self.running_sums as usize
            + self.model_key as usize
            + self.sums_check as usize
    }
}

fn schema() -> Result<Schema> {
    let (purchase_key, running_sums, model_key, sums_check) = Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT count(*) FILTER (WHERE attname = 'collab_purchases') > 0,
                    count(*) FILTER (WHERE attname = 'full_at') > 0,
                    count(*) FILTER (WHERE attname = 'collab_model') > 0,
                    count(*) FILTER (WHERE attname = 'sums_check') > 0
               FROM pg_catalog.pg_attribute
              WHERE attrelid = 'recommender.user_profiles'::pg_catalog.regclass
                AND attname IN ('collab_purchases', 'full_at', 'collab_model', 'sums_check')
                AND NOT attisdropped",
            None,
            &[],
        )?;
        let row = t.first();
        Ok::<_, RecError>((
            row.get::<bool>(1)?,
            row.get::<bool>(2)?,
            row.get::<bool>(3)?,
            row.get::<bool>(4)?,
        ))
    })?;
    let purchase_key = purchase_key.unwrap_or(false);
    // each release has the columns of the ones before: its statements use their parameters too
    let running_sums = purchase_key && running_sums.unwrap_or(false);
    let model_key = running_sums && model_key.unwrap_or(false);
    Ok(Schema {
        purchase_key,
        running_sums,
        model_key,
        sums_check: model_key && sums_check.unwrap_or(false),
    })
}

/// Whether a rebuilt profile keeps its stored collaborative candidates: the user's purchases are
/// the ones they were computed from (a new interaction was a view or a cart add), the stored
/// profile was made with the same interaction weights and `decay_days` (`version`: the repeat
/// source decays purchases), and none came from similar users (whose neighbourhoods every
/// interaction changes). Their own clock, candidate count and age are checked where they are
/// read, as before. With the user's purchases (`purchases`), which a recompute of the candidates
/// keeps with them.
fn keeps_collab(user_id: &str, version: &str) -> Result<(bool, (i64, Option<i64>))> {
    static KEEPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT coalesce(u.collab_ids IS NOT NULL AND u.collab_purchases = k.count
                             AND u.collab_last_purchase IS NOT DISTINCT FROM k.max
                             AND u.weights_version = $3
                             AND NOT EXISTS (SELECT FROM unnest(u.collab_sources) b WHERE b & $2 <> 0), false),
                    k.count, k.max
               FROM ({PURCHASES}) k LEFT JOIN recommender.user_profiles u ON u.user_id = $1"
        )
    });
    Spi::connect(|c| {
        let t = plans::select(
            c,
            &KEEPS,
            None,
            &[
                user_id.into(),
                (source::SIMILAR_USERS as i32).into(),
                version.into(),
            ],
        )?;
        let (keep, n, last) = t.first().get_three::<bool, i64, i64>()?;
        Ok((keep.unwrap_or(false), (n.unwrap_or(0), last)))
    })
}

/// Stores a user's collaborative candidates: without the purchase key, with it (0.10.0), and with
/// the item model key too (0.17.0).
static STORE_COLLAB: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
    let statement = |keys: &str| {
        format!(
            "UPDATE recommender.user_profiles
                SET collab_ids = $2, collab_scores = $3, collab_sources = $4, collab_n = $5,
                    collab_clock = {REPLAY_CLOCK}, collab_at = clock_timestamp(){keys}
              WHERE user_id = $1"
        )
    };
    [
        statement(""),
        statement(", collab_purchases = $6, collab_last_purchase = $7"),
        statement(", collab_purchases = $6, collab_last_purchase = $7, collab_model = $8"),
    ]
});

/// The item model's current build, when the schema keeps it with the collaborative candidates
/// (read before they are computed: a build committed meanwhile makes them stale at once, never
/// the other way round).
pub fn model_build() -> Result<Option<i64>> {
    if !schema()?.model_key {
        return Ok(None);
    }
    super::db::one::<i64>(MODEL_BUILD, &[])
}

/// Keeps a user's collaborative candidates with the profile (homepage is VOLATILE; it may write),
/// unless the server cannot take a write here (standby, read-only transaction).
/// `bought` is the user's purchases (`purchases`) and `build` the item model's build
/// (`model_build`), both read before the candidates were computed: the build is kept with them
/// when only the item model and repeat supplied them (`source::exact_until_model_build`).
pub fn store_collab(
    user_id: &str,
    collab: &[(i64, f64, u8)],
    n: usize,
    bought: (i64, Option<i64>),
    build: Option<i64>,
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
    let schema = schema()?;
    if schema.purchase_key {
        args.push(bought.0.into());
        args.push(bought.1.into());
    }
    let level = if schema.purchase_key && schema.model_key {
        let exact = source::exact_until_model_build(collab.iter().map(|c| c.2));
        args.push(build.filter(|_| exact).into());
        2
    } else {
        schema.purchase_key as usize
    };
    store_row(user_id, false, || plans::run(&STORE_COLLAB[level], &args))?;
    Ok(())
}

/// Keeps the bi-encoder embedding of the user's rerank query with the profile, when the server
/// can take a write here.
pub fn store_query_embedding(user_id: &str, v: &[f32]) -> Result<()> {
    if !can_write() {
        return Ok(());
    }
    store_row(user_id, false, || {
        plans::run(
            "UPDATE recommender.user_profiles SET query_embedding = $2::real[] WHERE user_id = $1",
            &[user_id.into(), v.to_vec().into()],
        )
    })?;
    Ok(())
}
