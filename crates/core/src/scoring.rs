//! Stage 2 (hybrid score) and stage 4 (business rules) of the pipeline, and preference decay.
//! Pure functions over plain data: no SPI, no pgrx.

/// Candidate sources, as a bit set; shown to users as text (`content,collaborative,...`).
pub mod source {
    pub const CONTENT: u8 = 1;
    pub const SIMILAR_USERS: u8 = 2;
    pub const CO_PURCHASE: u8 = 4;
    pub const POPULAR: u8 = 8;
    pub const CART: u8 = 16;
    pub const REPEAT: u8 = 32;
    pub const ITEM_MODEL: u8 = 64;

    pub fn names(bits: u8) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (b, n) in [
            (CONTENT, "content"),
            (SIMILAR_USERS, "similar_users"),
            (CO_PURCHASE, "co_purchase"),
            (POPULAR, "popular"),
            (CART, "cart"),
            (REPEAT, "repeat"),
            (ITEM_MODEL, "item_model"),
        ] {
            if bits & b != 0 {
                v.push(n);
            }
        }
        v
    }

    /// Sources that read other users' interactions as they come in: a list holding any of them
    /// goes stale as the store changes (`recommender.collaborative_cache_seconds`).
    pub const READS_OTHERS_LIVE: u8 = SIMILAR_USERS | CO_PURCHASE;

    /// Whether a user's collaborative candidates (their source bits) depend only on the user's own
    /// purchases and the item model's build: the item model supplied some and no source that
    /// reads other users' interactions as they come in supplied any. Such a list stays exact
    /// until the user's purchases change or the model is built again, however much time passes
    /// (the repeat scores' decay is a common factor that normalisation removes).
    pub fn exact_until_model_build(bits: impl IntoIterator<Item = u8>) -> bool {
        let mut model = false;
        for b in bits {
            if b & READS_OTHERS_LIVE != 0 {
                return false;
            }
            model |= b & ITEM_MODEL != 0;
        }
        model
    }
}

/// One candidate product with its raw signals (any scale) and what the rules need.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub product_id: i64,
    pub category: Option<String>,
    pub in_stock: bool,
    /// Days since the product was created, at the pipeline's clock.
    pub age_days: f64,
    /// The user already bought it.
    pub purchased: bool,
    /// Products with the same key (their lower-cased name) are shown once: catalogues often
    /// list one article several times (sizes, suppliers).
    pub dedupe_key: Option<String>,
    pub content: f64,
    pub collaborative: f64,
    pub popularity: f64,
    pub sources: u8,
}

/// A candidate after stages 2–3: signals normalised to [0, 1], hybrid and final scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub cand: Candidate,
    pub content: f64,
    pub collaborative: f64,
    pub popularity: f64,
    pub hybrid: f64,
    pub rerank: Option<f64>,
    pub score: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub max_per_category: usize,
    pub new_arrival_days: f64,
    pub new_arrival_boost: f64,
    pub allow_purchased: bool,
}

/// Min-max normalisation to [0, 1]. Non-finite values count as the minimum; when every value is
/// equal, positive values map to 1 and the rest to 0 (a lone signal still counts).
pub fn normalize(values: &[f64]) -> Vec<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return vec![0.0; values.len()];
    }
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                0.0
            } else if hi > lo {
                (v - lo) / (hi - lo)
            } else if v > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

/// The collaborative signal of a homepage candidate from its two halves, each in [0, 1]: what the
/// user's own repeat purchases say (`repeat`, "buy it again") and what other users say
/// (`explore`: similar users, co-purchase). `share` (`recommender.repeat_share`, clamped to
/// [0, 1]) is the part repeat buying gets: 0 ignores the user's own purchases, 1 other users. The
/// two are weighed apart instead of taking the larger: the top of any normalised list is 1, so a
/// maximum would rank an explore source's best guess level with the product bought every week.
pub fn collaborative_blend(explore: f64, repeat: f64, share: f64) -> f64 {
    let s = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    (1.0 - s) * explore + s * repeat
}

/// Stage 2: normalise each signal over the candidate set, then α·content + β·collaborative +
/// γ·popularity. The result is sorted by hybrid score, ties by product id.
pub fn hybrid(cands: Vec<Candidate>, w: Weights) -> Vec<Scored> {
    let c = normalize(&cands.iter().map(|c| c.content).collect::<Vec<_>>());
    let b = normalize(&cands.iter().map(|c| c.collaborative).collect::<Vec<_>>());
    let p = normalize(&cands.iter().map(|c| c.popularity).collect::<Vec<_>>());
    let mut out: Vec<Scored> = cands
        .into_iter()
        .enumerate()
        .map(|(i, cand)| {
            let h = w.alpha * c[i] + w.beta * b[i] + w.gamma * p[i];
            Scored {
                cand,
                content: c[i],
                collaborative: b[i],
                popularity: p[i],
                hybrid: h,
                rerank: None,
                score: h,
            }
        })
        .collect();
    sort_by_score(&mut out, |s| s.hybrid);
    out
}

/// Stage 3 blend: the top candidates that were reranked get
/// `score = (1 - λ)·hybrid + λ·rerank` (rerank already in [0, 1]); the others `(1 - λ)·hybrid`.
pub fn blend_rerank(scored: &mut [Scored], lambda: f64) {
    for s in scored.iter_mut() {
        s.score = (1.0 - lambda) * s.hybrid + lambda * s.rerank.unwrap_or(0.0);
    }
}

/// Stage 3's input: indexes (into `scored`, in hybrid order) of at most `n` candidates worth the
/// reranker's time. A candidate the rules would drop whatever its rerank score (out of stock,
/// already purchased, named like a `taken` product) is skipped, and of products with the same
/// dedupe key only the best by hybrid score is reranked: the rules show one of them, so the model
/// is spent on `n` distinct products instead of several copies of one.
pub fn rerank_targets(
    scored: &[Scored],
    n: usize,
    r: Rules,
    taken: &std::collections::HashSet<String>,
) -> Vec<usize> {
    let mut names: std::collections::HashSet<&str> = Default::default();
    let mut out = Vec::with_capacity(n.min(scored.len()));
    for (i, s) in scored.iter().enumerate() {
        if out.len() >= n {
            break;
        }
        if !s.cand.in_stock || (s.cand.purchased && !r.allow_purchased) {
            continue;
        }
        if let Some(key) = s.cand.dedupe_key.as_deref() {
            if taken.contains(key) || !names.insert(key) {
                continue;
            }
        }
        out.push(i);
    }
    out
}

/// Stage 4: new-arrival boost, then walk the candidates by score and keep those that pass the
/// rules (in stock, not already purchased unless allowed, at most `max_per_category` per
/// category) until k are kept. Candidates removed by a rule are replaced by the next ones, so k
/// rows come back whenever k eligible candidates exist.
pub fn apply_rules(scored: Vec<Scored>, k: usize, r: Rules) -> Vec<Scored> {
    apply_rules_excluding(scored, k, r, &std::collections::HashSet::new())
}

/// [`apply_rules`], treating `taken` dedupe keys as already shown (the cart's own items, the
/// product a page is about).
pub fn apply_rules_excluding(
    mut scored: Vec<Scored>,
    k: usize,
    r: Rules,
    taken: &std::collections::HashSet<String>,
) -> Vec<Scored> {
    for s in scored.iter_mut() {
        if s.cand.age_days >= 0.0 && s.cand.age_days < r.new_arrival_days {
            s.score *= 1.0 + r.new_arrival_boost;
        }
    }
    sort_by_score(&mut scored, |s| s.score);
    let mut per_cat: std::collections::HashMap<Option<String>, usize> = Default::default();
    let mut seen = std::collections::HashSet::new();
    let mut names = taken.clone();
    let mut out = Vec::with_capacity(k.min(scored.len()));
    for s in scored {
        if out.len() >= k {
            break;
        }
        if !s.cand.in_stock
            || (s.cand.purchased && !r.allow_purchased)
            || seen.contains(&s.cand.product_id)
        {
            continue;
        }
        if s.cand
            .dedupe_key
            .as_ref()
            .is_some_and(|n| names.contains(n))
        {
            continue;
        }
        let n = per_cat.entry(s.cand.category.clone()).or_insert(0);
        // Products without a category are not capped together.
        if s.cand.category.is_some() && *n >= r.max_per_category {
            continue;
        }
        *n += 1;
        seen.insert(s.cand.product_id);
        if let Some(key) = &s.cand.dedupe_key {
            names.insert(key.clone());
        }
        out.push(s);
    }
    out
}

/// Descending by `key`, ties by ascending product id: deterministic.
pub fn sort_by_score(v: &mut [Scored], key: impl Fn(&Scored) -> f64) {
    v.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.partial_cmp(&ka)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cand.product_id.cmp(&b.cand.product_id))
    });
}

/// exp(-age_days / half_life_days): the decay of an interaction's weight.
pub fn decay(age_days: f64, tau_days: f64) -> f64 {
    if tau_days <= 0.0 {
        return 1.0;
    }
    (-age_days.max(0.0) / tau_days).exp()
}

/// Logistic squashing of a cross-encoder logit into (0, 1).
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_lists_of_the_item_model_and_repeat_outlive_the_clock() {
        use source::*;
        assert!(exact_until_model_build([REPEAT, ITEM_MODEL, ITEM_MODEL]));
        assert!(exact_until_model_build([ITEM_MODEL]));
        // repeat alone: the explore sources ran and found nothing, and may find something later
        assert!(!exact_until_model_build([REPEAT, REPEAT]));
        assert!(!exact_until_model_build([]));
        assert!(!exact_until_model_build([
            REPEAT,
            ITEM_MODEL,
            SIMILAR_USERS
        ]));
        assert!(!exact_until_model_build([ITEM_MODEL | CO_PURCHASE]));
    }

    fn cand(
        id: i64,
        cat: Option<&str>,
        stock: bool,
        purchased: bool,
        c: f64,
        b: f64,
        p: f64,
    ) -> Candidate {
        Candidate {
            product_id: id,
            category: cat.map(str::to_string),
            in_stock: stock,
            age_days: 100.0,
            purchased,
            dedupe_key: None,
            content: c,
            collaborative: b,
            popularity: p,
            sources: source::CONTENT,
        }
    }

    const W: Weights = Weights {
        alpha: 0.5,
        beta: 0.3,
        gamma: 0.2,
    };
    const R: Rules = Rules {
        max_per_category: 3,
        new_arrival_days: 30.0,
        new_arrival_boost: 0.1,
        allow_purchased: true,
    };

    #[test]
    fn collaborative_blend_weighs_repeat_by_its_share() {
        assert_eq!(collaborative_blend(0.4, 1.0, 0.0), 0.4);
        assert_eq!(collaborative_blend(0.4, 1.0, 1.0), 1.0);
        assert!((collaborative_blend(1.0, 0.5, 0.8) - 0.6).abs() < 1e-12);
        // out-of-range shares are clamped, a NaN share counts as 0
        assert_eq!(collaborative_blend(0.4, 1.0, 7.0), 1.0);
        assert_eq!(collaborative_blend(0.4, 1.0, f64::NAN), 0.4);
    }

    #[test]
    fn normalize_edges() {
        assert_eq!(normalize(&[]), Vec::<f64>::new());
        assert_eq!(normalize(&[2.0, 4.0, 3.0]), vec![0.0, 1.0, 0.5]);
        assert_eq!(normalize(&[5.0, 5.0]), vec![1.0, 1.0]);
        assert_eq!(normalize(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(normalize(&[f64::NAN, 1.0, 3.0]), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn weights_change_the_order() {
        let cs = vec![
            cand(1, None, true, false, 1.0, 0.0, 0.0),
            cand(2, None, true, false, 0.0, 1.0, 0.0),
        ];
        let a = hybrid(cs.clone(), W);
        assert_eq!(a[0].cand.product_id, 1);
        let b = hybrid(
            cs,
            Weights {
                alpha: 0.1,
                beta: 0.9,
                gamma: 0.0,
            },
        );
        assert_eq!(b[0].cand.product_id, 2);
    }

    #[test]
    fn rules_cap_stock_purchased_and_refill() {
        let cs = vec![
            cand(1, Some("a"), true, false, 1.0, 0.0, 0.0),
            cand(2, Some("a"), true, false, 0.9, 0.0, 0.0),
            cand(3, Some("a"), true, false, 0.8, 0.0, 0.0),
            cand(4, Some("a"), true, false, 0.7, 0.0, 0.0),
            cand(5, Some("b"), false, false, 0.6, 0.0, 0.0),
            cand(6, Some("b"), true, true, 0.5, 0.0, 0.0),
            cand(7, Some("c"), true, false, 0.1, 0.0, 0.0),
        ];
        let out = apply_rules(hybrid(cs.clone(), W), 5, R);
        let ids: Vec<i64> = out.iter().map(|s| s.cand.product_id).collect();
        assert_eq!(ids, vec![1, 2, 3, 6, 7]);
        let out = apply_rules(
            hybrid(cs, W),
            5,
            Rules {
                allow_purchased: false,
                ..R
            },
        );
        let ids: Vec<i64> = out.iter().map(|s| s.cand.product_id).collect();
        assert_eq!(ids, vec![1, 2, 3, 7]);
    }

    #[test]
    fn same_name_shown_once() {
        let mut a = cand(1, None, true, false, 1.0, 0.0, 0.0);
        let mut b = cand(2, None, true, false, 0.9, 0.0, 0.0);
        let c = cand(3, None, true, false, 0.1, 0.0, 0.0);
        a.dedupe_key = Some("yogurt 32 oz".into());
        b.dedupe_key = Some("yogurt 32 oz".into());
        let out = apply_rules(hybrid(vec![a, b, c], W), 3, R);
        assert_eq!(
            out.iter().map(|s| s.cand.product_id).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }

    #[test]
    fn rerank_targets_skip_copies_and_unshowable() {
        let mut a = cand(1, None, true, false, 1.0, 0.0, 0.0);
        let mut b = cand(2, None, true, false, 0.9, 0.0, 0.0);
        let c = cand(3, None, false, false, 0.8, 0.0, 0.0);
        let mut d = cand(4, None, true, false, 0.7, 0.0, 0.0);
        let e = cand(5, None, true, false, 0.6, 0.0, 0.0);
        let f = cand(6, None, true, false, 0.5, 0.0, 0.0);
        a.dedupe_key = Some("yogurt 32 oz".into());
        b.dedupe_key = Some("yogurt 32 oz".into());
        d.dedupe_key = Some("page product".into());
        let scored = hybrid(vec![a, b, c, d, e, f], W);
        let taken = ["page product".to_string()].into_iter().collect();
        let ids = |v: Vec<usize>| {
            v.iter()
                .map(|&i| scored[i].cand.product_id)
                .collect::<Vec<_>>()
        };
        // 2 copies 1's name, 3 is out of stock, 4 is named like the page's product.
        assert_eq!(ids(rerank_targets(&scored, 10, R, &taken)), vec![1, 5, 6]);
        assert_eq!(ids(rerank_targets(&scored, 2, R, &taken)), vec![1, 5]);
        assert!(rerank_targets(&scored, 0, R, &taken).is_empty());
    }

    #[test]
    fn new_arrivals_are_boosted() {
        let mut a = cand(1, None, true, false, 1.0, 0.0, 0.0);
        let mut b = cand(2, None, true, false, 0.95, 0.0, 0.0);
        a.age_days = 200.0;
        b.age_days = 2.0;
        let mut s = hybrid(
            vec![a, b],
            Weights {
                alpha: 1.0,
                beta: 0.0,
                gamma: 0.0,
            },
        );
        s.iter_mut()
            .for_each(|x| x.score = if x.cand.product_id == 1 { 1.0 } else { 0.9 });
        let out = apply_rules(
            s,
            2,
            Rules {
                new_arrival_boost: 0.5,
                ..R
            },
        );
        assert_eq!(out[0].cand.product_id, 2);
    }

    #[test]
    fn decay_and_sigmoid() {
        assert!((decay(0.0, 30.0) - 1.0).abs() < 1e-12);
        assert!((decay(30.0, 30.0) - (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(decay(-5.0, 30.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-12);
    }

    fn arb_cands() -> impl Strategy<Value = Vec<Candidate>> {
        prop::collection::vec(
            (
                0i64..40,
                prop::option::of(0u8..5),
                any::<bool>(),
                any::<bool>(),
                0.0f64..1.0,
                0.0f64..5.0,
                0.0f64..100.0,
                0.0f64..60.0,
            ),
            0..80,
        )
        .prop_map(|v| {
            let mut seen = std::collections::HashSet::new();
            v.into_iter()
                .filter(|t| seen.insert(t.0))
                .map(|(id, cat, stock, purchased, c, b, p, age)| {
                    let cat = cat.map(|c| format!("cat{c}"));
                    Candidate {
                        age_days: age,
                        ..cand(id, cat.as_deref(), stock, purchased, c, b, p)
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn rules_invariants(cands in arb_cands(), k in 1usize..30, cap in 1usize..4, allow in any::<bool>()) {
            let rules = Rules { max_per_category: cap, allow_purchased: allow, ..R };
            let out = apply_rules(hybrid(cands.clone(), W), k, rules);
            // never more than k, no duplicates, rules never violated
            prop_assert!(out.len() <= k);
            let mut ids: Vec<i64> = out.iter().map(|s| s.cand.product_id).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), out.len());
            prop_assert!(out.iter().all(|s| s.cand.in_stock));
            prop_assert!(allow || out.iter().all(|s| !s.cand.purchased));
            let mut per: std::collections::HashMap<&Option<String>, usize> = Default::default();
            for s in &out { *per.entry(&s.cand.category).or_default() += 1; }
            prop_assert!(per.iter().all(|(c, n)| c.is_none() || *n <= cap));
            // refill: if fewer than k came back, no eligible candidate was left out
            if out.len() < k {
                let kept: std::collections::HashSet<i64> = out.iter().map(|s| s.cand.product_id).collect();
                for c in &cands {
                    let eligible = c.in_stock && (allow || !c.purchased);
                    if eligible && !kept.contains(&c.product_id) {
                        let n = per.get(&c.category).copied().unwrap_or(0);
                        // the only reason left is the category cap
                        prop_assert!(c.category.is_some() && n >= cap);
                    }
                }
            }
            // deterministic: same input, same output
            let again = apply_rules(hybrid(cands, W), k, rules);
            prop_assert_eq!(out, again);
        }

        #[test]
        fn collaborative_blend_stays_between_its_halves(e in 0.0f64..=1.0, r in 0.0f64..=1.0, share in -1.0f64..2.0) {
            let b = collaborative_blend(e, r, share);
            prop_assert!(b >= e.min(r) - 1e-12 && b <= e.max(r) + 1e-12);
            // more repeat evidence never lowers the signal
            prop_assert!(collaborative_blend(e, (r + 0.1).min(1.0), share) >= b - 1e-12);
        }

        #[test]
        fn scores_sorted_and_bounded(cands in arb_cands()) {
            let s = hybrid(cands, W);
            prop_assert!(s.windows(2).all(|w| w[0].hybrid >= w[1].hybrid));
            prop_assert!(s.iter().all(|x| x.hybrid >= 0.0 && x.hybrid <= 1.0 + 1e-9));
        }
    }
}
