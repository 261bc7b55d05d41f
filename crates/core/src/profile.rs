//! A user's preference as a running sum: Σ weight(type) × exp(−age/τ) × embedding over the
//! user's interactions, with the same decayed weights per category and the price range of what
//! the user engaged with (positive type weights).
//!
//! Ages are taken from the state's reference day, the newest interaction's day, so the sum never
//! under- or overflows whatever the clock. Adding interactions newer than it moves the reference
//! and scales what is there by exp(−Δ/τ) first: exp(−(T − t)/τ) = exp(−(T − r)/τ)·exp(−(r − t)/τ).
//! So a state built from some interactions and then given the rest equals, up to rounding, the
//! state built from all of them at once: a profile is updated with a user's new interactions
//! instead of rebuilt from all of them. The preference is the normalised sum (its norm is kept to
//! recover the sum from the stored preference).
use crate::pooling::normalize;
use crate::scoring::decay;

/// One interaction as the profile reads it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// When it happened, in days (any fixed origin; only differences count).
    pub day: f64,
    /// The weight of its type (`interaction_weights`; 0 when the type has none).
    pub weight: f64,
    /// The product's embedding; None while it has none (not embedded yet).
    pub embedding: Option<&'a [f32]>,
    pub category: Option<&'a str>,
    pub price: Option<f64>,
}

/// The running sums of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The reference day: the newest interaction's (−∞ while empty).
    pub day: f64,
    /// Σ w·exp(−(day − t)/τ)·e, `dim` wide.
    pub sum: Vec<f64>,
    /// Σ w·exp(−(day − t)/τ) per category, over interactions of positive weight.
    pub categories: Vec<(String, f64)>,
    /// (lowest, highest) price over interactions of positive weight.
    pub price: Option<(f64, f64)>,
    /// An upper bound of the sum's norm from its terms, Σ |w·exp(−(day − t)/τ)|·‖e‖ (a stored
    /// state starts from its norm): a sum this much smaller is rounding left by cancelling terms.
    pub magnitude: f64,
}

/// A sum whose norm is at most this share of its terms' magnitude has no direction: the
/// preference is None (a stored preference is f32, ~1e-7 relative).
const CANCELLED: f64 = 1e-6;

impl State {
    pub fn empty(dim: usize) -> Self {
        State {
            day: f64::NEG_INFINITY,
            sum: vec![0.0; dim],
            categories: Vec::new(),
            price: None,
            magnitude: 0.0,
        }
    }

    /// A stored state: the normalised preference and its norm give the sum back (`dim` wide; a
    /// preference of another width counts as none).
    pub fn stored(
        preference: Option<&[f32]>,
        norm: f64,
        day: f64,
        categories: Vec<(String, f64)>,
        price: Option<(f64, f64)>,
        dim: usize,
    ) -> Self {
        let sum = match preference {
            Some(p) if p.len() == dim && norm.is_finite() => {
                p.iter().map(|&x| x as f64 * norm).collect()
            }
            _ => vec![0.0; dim],
        };
        let magnitude = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
        State {
            day,
            sum,
            categories,
            price,
            magnitude,
        }
    }

    /// Adds interactions (any order, any days) with decay constant `tau_days`.
    pub fn add(&mut self, events: &[Event], tau_days: f64) {
        let Some(newest) = events.iter().map(|e| e.day).reduce(f64::max) else {
            return;
        };
        if newest > self.day {
            let f = if self.day == f64::NEG_INFINITY {
                0.0
            } else {
                decay(newest - self.day, tau_days)
            };
            self.sum.iter_mut().for_each(|x| *x *= f);
            self.categories.iter_mut().for_each(|c| c.1 *= f);
            self.magnitude *= f;
            self.day = newest;
        }
        let mut cats: std::collections::HashMap<String, f64> =
            std::mem::take(&mut self.categories).into_iter().collect();
        for e in events {
            let wd = e.weight * decay(self.day - e.day, tau_days);
            if let Some(v) = e.embedding.filter(|v| v.len() == self.sum.len()) {
                self.sum
                    .iter_mut()
                    .zip(v)
                    .for_each(|(a, &x)| *a += wd * x as f64);
                let len = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
                self.magnitude += wd.abs() * len;
            }
            if e.weight > 0.0 {
                if let Some(c) = e.category {
                    *cats.entry(c.to_string()).or_default() += wd;
                }
                if let Some(p) = e.price {
                    self.price = Some(match self.price {
                        Some((lo, hi)) => (lo.min(p), hi.max(p)),
                        None => (p, p),
                    });
                }
            }
        }
        self.categories = cats.into_iter().collect();
        // heaviest first, ties by name: the order top_categories reads
        self.categories.sort_by(|a, b| {
            b.1.partial_cmp(&a.1)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.0.cmp(&b.0))
        });
    }

    /// The L2-normalised sum; None when nothing contributes (no vectors, or terms that cancel:
    /// a norm of at most `CANCELLED` × their magnitude).
    pub fn preference(&self) -> Option<Vec<f32>> {
        (self.norm() > CANCELLED * self.magnitude && self.sum.iter().any(|x| *x != 0.0))
            .then(|| normalize(&self.sum))
    }

    /// The sum's L2 norm (what `stored` multiplies the preference by).
    pub fn norm(&self) -> f64 {
        self.sum.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    /// The `n` heaviest categories.
    pub fn top_categories(&self, n: usize) -> Vec<String> {
        self.categories
            .iter()
            .take(n)
            .map(|c| c.0.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pooling::{cosine, weighted_mean};
    use proptest::prelude::*;

    fn ev<'a>(day: f64, weight: f64, e: &'a [f32], cat: &'a str, price: f64) -> Event<'a> {
        Event {
            day,
            weight,
            embedding: Some(e),
            category: Some(cat),
            price: Some(price),
        }
    }

    #[test]
    fn one_pass_is_the_decayed_weighted_mean() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let events = [ev(10.0, 1.0, &a, "x", 3.0), ev(0.0, 5.0, &b, "y", 9.0)];
        let mut s = State::empty(2);
        s.add(&events, 10.0);
        let w_old = 5.0 * (-1.0f64).exp();
        let want = weighted_mean([(1.0, &a[..]), (w_old, &b[..])], 2).unwrap();
        assert_eq!(s.preference().unwrap(), want);
        assert_eq!(s.day, 10.0);
        assert_eq!(s.top_categories(3), vec!["y", "x"]);
        assert_eq!(s.price, Some((3.0, 9.0)));
    }

    #[test]
    fn negative_and_zero_weights_move_the_vector_only() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let mut s = State::empty(2);
        s.add(
            &[ev(1.0, 2.0, &a, "x", 3.0), ev(1.0, -1.0, &b, "y", 100.0)],
            90.0,
        );
        s.add(&[ev(1.0, 0.0, &b, "z", 0.5)], 90.0);
        assert_eq!(s.top_categories(3), vec!["x"]);
        assert_eq!(s.price, Some((3.0, 3.0)));
        assert!(s.preference().unwrap()[1] < 0.0);
    }

    #[test]
    fn nothing_to_add_and_nothing_embedded() {
        let mut s = State::empty(2);
        s.add(&[], 1.0);
        assert_eq!(s, State::empty(2));
        s.add(
            &[Event {
                day: 1.0,
                weight: 1.0,
                embedding: None,
                category: None,
                price: None,
            }],
            1.0,
        );
        assert_eq!(s.preference(), None);
        assert_eq!(s.norm(), 0.0);
        // a stored state without a preference, or of another width, starts from zero
        let z = State::stored(Some(&[1.0, 2.0, 3.0]), 2.0, 1.0, vec![], None, 2);
        assert_eq!(z.sum, vec![0.0, 0.0]);
    }

    #[test]
    fn terms_that_cancel_leave_no_preference_stored_or_not() {
        let a = [0.6f32, 0.8];
        let mut s = State::empty(2);
        s.add(&[ev(1.0, 1.0, &a, "x", 1.0)], 30.0);
        let pref = s.preference();
        let mut stored = State::stored(pref.as_deref(), s.norm(), s.day, vec![], None, 2);
        // a view and then a removal of the same product on the same day cancel exactly
        s.add(&[ev(1.0, -1.0, &a, "x", 1.0)], 30.0);
        stored.add(&[ev(1.0, -1.0, &a, "x", 1.0)], 30.0);
        assert_eq!(s.preference(), None);
        assert_eq!(
            stored.preference(),
            None,
            "rounding of the f32 preference is no direction"
        );
    }

    fn arb_events() -> impl Strategy<Value = Vec<(f64, f64, [f32; 3], u8, f64, bool)>> {
        prop::collection::vec(
            (
                0.0f64..400.0,
                prop::sample::select(vec![5.0, 3.0, 1.0, 0.0, -1.0]),
                prop::array::uniform3(-1.0f32..1.0),
                0u8..5,
                0.0f64..100.0,
                any::<bool>(),
            ),
            1..40,
        )
    }

    proptest! {
        /// A state stored (normalised preference and norm, in f32 like the table) and then given
        /// the rest of the interactions equals the state built from all of them at once.
        #[test]
        fn updating_equals_rebuilding(raw in arb_events(), split in 0usize..40, tau in 1.0f64..200.0) {
            const CATS: [&str; 5] = ["a", "b", "c", "d", "e"];
            let events: Vec<Event> = raw
                .iter()
                .map(|(d, w, e, c, p, has)| Event {
                    day: *d,
                    weight: *w,
                    embedding: has.then_some(&e[..]),
                    category: Some(CATS[*c as usize]),
                    price: Some(*p),
                })
                .collect();
            let split = split.min(events.len());
            let mut all = State::empty(3);
            all.add(&events, tau);
            let mut first = State::empty(3);
            first.add(&events[..split], tau);
            let pref = first.preference();
            let mut updated = State::stored(
                pref.as_deref(), first.norm(), first.day, first.categories.clone(), first.price, 3,
            );
            updated.add(&events[split..], tau);
            prop_assert_eq!(updated.day, all.day);
            prop_assert_eq!(updated.price, all.price);
            match (all.preference(), updated.preference()) {
                (Some(a), Some(b)) => {
                    // a sum that nearly cancels has no stable direction to compare
                    if all.norm() > 1e-4 * all.magnitude {
                        prop_assert!(cosine(&a, &b) > 0.99999, "{:?} {:?}", a, b);
                    }
                }
                (None, None) => {}
                // near the cancellation threshold the two may fall on either side of it
                (a, b) => prop_assert!(all.norm() < 1e-4 * all.magnitude, "{:?} {:?}", a, b),
            }
            prop_assert_eq!(all.categories.len(), updated.categories.len());
            for (x, y) in all.categories.iter().zip(&updated.categories) {
                let same = x.0 == y.0 || (x.1 - y.1).abs() <= 1e-9 * x.1.abs().max(1.0);
                prop_assert!(same, "{:?} {:?}", all.categories, updated.categories);
                prop_assert!((x.1 - y.1).abs() <= 1e-9 * x.1.abs().max(1.0));
            }
        }
    }
}
