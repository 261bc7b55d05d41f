//! The item-to-item model of the homepage's `item_model` source: EASE (Steck, "Embarrassingly
//! Shallow Autoencoders for Sparse Data", WWW 2019). With X the users × items 0/1 matrix of who
//! bought what, G = XᵀX + λI and P = G⁻¹, the weights are B = I − P·diag(1/diag(P)) with a zero
//! diagonal: B[i][j] = −P[i][j] / P[j][j]. A user's score of item j is the sum of B[i][j] over
//! the items i the user bought. The database keeps each item's strongest weights, by absolute
//! value (`recommender.item_neighbors`); the extension builds them with `build_item_model()`.
//! Negative weights stay: an item that replaces another (one brand of coffee for another) counts
//! against it. On Complete Journey's validation split, keeping the 100 largest |B[i][j]| per item
//! ranked new-to-user items as the full B did (NDCG@10 0.043), keeping the 100 largest positive
//! ones lost 0.002 to 0.003.
//!
//! f32 throughout: λ keeps every eigenvalue of G at λ or above, so G is well conditioned and
//! single precision ranks the neighbours as double precision does (a test below compares them).
use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Side};

/// Most items a model may span. EASE's build holds two items × items f32 matrices at once (the
/// Cholesky factor and the inverse): 2 × 400 MB at this size, 2 × 100 MB at the default 5,000;
/// with the adoption model up to four.
pub const MAX_ITEMS: usize = 10_000;
/// Fewest customers who first bought something in the adoption window for the adoption model to
/// be blended in; with fewer, the item model is EASE alone. Learned from 3 customers (MovieLens'
/// validation split) it cost the homepage 0.016 NDCG@10; from 1,900 (Complete Journey) it gained
/// (BENCHMARKS.md, release 0.24.0).
pub const MIN_ADOPTERS: usize = 100;
/// Most neighbours an item may keep.
pub const MAX_NEIGHBORS: usize = 1_000;

/// How much the user's `rank`-th most recent product (0: the newest) counts in the item model's
/// sum, with `recommender.item_model_recency` = `recency`: exp(−rank / recency), and 1 for every
/// product when `recency` is 0 (the whole history alike, EASE's own prediction). On MovieLens'
/// validation splits a recency of 5–10 gained 0.010–0.025 NDCG@10 over the plain sum; on
/// Complete Journey's it lost at every value tried (BENCHMARKS.md, release 0.25.0), hence 0 by
/// default and a coordinate of `tune()`.
pub fn recency_weight(rank: usize, recency: u32) -> f64 {
    if recency == 0 {
        1.0
    } else {
        (-(rank as f64) / recency as f64).exp()
    }
}

/// XᵀX + λI, built one user at a time (`add_user`).
pub struct Gram {
    g: Mat<f32>,
}

impl Gram {
    /// An `n` × `n` Gram matrix with λ on the diagonal and nobody's purchases yet.
    pub fn new(n: usize, lambda: f32) -> Self {
        Gram {
            g: Mat::from_fn(n, n, |i, j| if i == j { lambda } else { 0.0 }),
        }
    }

    /// Adds one user's items (indices below `n`, each counted once however often it repeats).
    /// Only the lower triangle is kept: the factorisation reads nothing else.
    pub fn add_user(&mut self, items: &[u32]) {
        let mut v: Vec<usize> = items
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| i < self.g.nrows())
            .collect();
        v.sort_unstable();
        v.dedup();
        for (a, &j) in v.iter().enumerate() {
            // column j, rows i >= j: contiguous in faer's column-major storage
            for &i in &v[a..] {
                self.g[(i, j)] += 1.0;
            }
        }
    }

    /// EASE's weights, sparsified: for each item i, its `keep` B[i][j] (j ≠ i) of largest absolute
    /// value, strongest first (ties by index); zero weights are left out. `None` when G is not positive definite (λ ≤ 0 with items
    /// nobody or the same users bought).
    pub fn neighbors(self, keep: usize) -> Option<Vec<Vec<(u32, f32)>>> {
        Some(sparsify(&self.weights()?, keep))
    }

    /// EASE's weights, dense: B[i][j] = −P[i][j] / P[j][j], zero on the diagonal, row i in
    /// column i (P is symmetric, and so column-major storage keeps each row contiguous).
    pub fn weights(self) -> Option<Mat<f32>> {
        let n = self.g.nrows();
        let llt = self.g.llt(Side::Lower).ok()?;
        drop(self.g);
        let mut p = llt.inverse();
        drop(llt);
        let diag: Vec<f32> = (0..n).map(|j| p[(j, j)]).collect();
        for i in 0..n {
            let mut col = p.col_mut(i);
            for (j, &d) in diag.iter().enumerate() {
                col[j] = if j == i { 0.0 } else { -col[j] / d };
            }
        }
        Some(p)
    }
}

/// The adoption model: what a customer's history predicts they will buy *for the first time*
/// soon, learned from the store's own recent past. X is who had bought what before a cut, Y who
/// bought what for the first time in the window after it; the weights are the ridge regression
/// of Y on X, B = (XᵀX + λI)⁻¹ XᵀY, and a customer's score of item j is the sum of B[i][j] over
/// the items i they bought. EASE learns which items go together in a history; this learns which
/// items a history leads to next, so it ranks products new to the customer better: on Complete
/// Journey, blended with EASE, +0.005 NDCG@10 over EASE on new-to-user items (BENCHMARKS.md,
/// issue 14).
pub struct Adoption {
    gram: Gram,
    /// XᵀY: `cross[(i, j)]` counts the customers who had bought i and then first bought j.
    cross: Mat<f32>,
}

impl Adoption {
    /// `n` items, λ on the Gram matrix's diagonal, no customers yet.
    pub fn new(n: usize, lambda: f32) -> Self {
        Adoption {
            gram: Gram::new(n, lambda),
            cross: Mat::zeros(n, n),
        }
    }

    /// Adds one customer: the items bought before the cut, and those first bought after it
    /// (indices below `n`; repeats counted once).
    pub fn add_user(&mut self, before: &[u32], first_after: &[u32]) {
        self.gram.add_user(before);
        let n = self.cross.nrows();
        let clean = |v: &[u32]| {
            let mut v: Vec<usize> = v.iter().map(|&i| i as usize).filter(|&i| i < n).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (x, y) = (clean(before), clean(first_after));
        for &j in &y {
            // column j, rows i: contiguous
            let mut col = self.cross.col_mut(j);
            for &i in &x {
                col[i] += 1.0;
            }
        }
    }

    /// B, dense, laid out as `Gram::weights` lays EASE's out (row i of B in column i). `None`
    /// when XᵀX + λI is not positive definite.
    pub fn weights(self) -> Option<Mat<f32>> {
        let Adoption { gram, cross } = self;
        let llt = gram.g.llt(Side::Lower).ok()?;
        drop(gram);
        let mut b = cross;
        llt.solve_in_place(b.as_mut());
        drop(llt);
        Some(b.transpose().to_owned())
    }
}

/// (1 − w)·A / scale(A) + w·B / scale(B), into `a`; both laid out as `Gram::weights` lays B out,
/// scale the mean over items of their largest weight (so that `w` means the same whatever λ or
/// store). When B has no positive weight (nobody bought anything new in its window) A is left as
/// it is.
pub fn blend(a: &mut Mat<f32>, b: &Mat<f32>, w: f32) {
    let (sa, sb) = (scale(a), scale(b));
    if sb <= 0.0 {
        return;
    }
    let ka = if sa > 0.0 { (1.0 - w) / sa } else { 0.0 };
    let kb = w / sb;
    for i in 0..a.ncols() {
        let bc = b.col(i);
        let mut ac = a.col_mut(i);
        for j in 0..ac.nrows() {
            ac[j] = ka * ac[j] + kb * bc[j];
        }
    }
}

/// The mean over items (columns, as laid out) of their largest weight, 0 when none is positive.
fn scale(m: &Mat<f32>) -> f32 {
    if m.ncols() == 0 {
        return 0.0;
    }
    let sum: f64 = (0..m.ncols())
        .map(|i| m.col(i).iter().copied().fold(0.0f32, f32::max) as f64)
        .sum();
    (sum / m.ncols() as f64) as f32
}

/// For each item (column as laid out), its `keep` weights of largest absolute value but its own,
/// strongest first (ties by index); zero and non-finite weights are left out.
pub fn sparsify(b: &Mat<f32>, keep: usize) -> Vec<Vec<(u32, f32)>> {
    let n = b.ncols();
    let mut out = Vec::with_capacity(n);
    let mut row: Vec<(u32, f32)> = Vec::with_capacity(b.nrows());
    for i in 0..n {
        row.clear();
        let col = b.col(i);
        for j in 0..col.nrows() {
            let w = col[j];
            if j != i && w != 0.0 && w.is_finite() {
                row.push((j as u32, w));
            }
        }
        out.push(top(&mut row, keep));
    }
    out
}

/// The `keep` entries of largest absolute weight, strongest first, ties by index.
fn top(row: &mut [(u32, f32)], keep: usize) -> Vec<(u32, f32)> {
    let order =
        |a: &(u32, f32), b: &(u32, f32)| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0));
    let keep = keep.min(row.len());
    if keep == 0 {
        return Vec::new();
    }
    if keep < row.len() {
        row.select_nth_unstable_by(keep - 1, order);
    }
    let mut v = row[..keep].to_vec();
    v.sort_unstable_by(order);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model(n: usize, users: &[Vec<u32>], lambda: f32, keep: usize) -> Vec<Vec<(u32, f32)>> {
        let mut g = Gram::new(n, lambda);
        for u in users {
            g.add_user(u);
        }
        g.neighbors(keep).expect("positive definite")
    }

    /// Reduces [M | R] (n rows, M n x n) in place to [I | M⁻¹R], in f64 (M symmetric positive
    /// definite here, so no pivoting).
    fn gauss_jordan(a: &mut [Vec<f64>]) {
        let n = a.len();
        for c in 0..n {
            let piv = a[c][c];
            for x in a[c].iter_mut() {
                *x /= piv;
            }
            for r in 0..n {
                if r != c {
                    let f = a[r][c];
                    let pivot_row = a[c].clone();
                    for (x, y) in a[r].iter_mut().zip(pivot_row) {
                        *x -= f * y;
                    }
                }
            }
        }
    }

    /// B by Gauss-Jordan in f64, dense, for small n.
    fn reference(n: usize, users: &[Vec<u32>], lambda: f64) -> Vec<Vec<f64>> {
        let mut a = vec![vec![0.0f64; 2 * n]; n];
        for (i, r) in a.iter_mut().enumerate() {
            r[i] = lambda;
            r[n + i] = 1.0;
        }
        for u in users {
            let mut v: Vec<usize> = u.iter().map(|&i| i as usize).collect();
            v.sort_unstable();
            v.dedup();
            for &i in &v {
                for &j in &v {
                    a[i][j] += 1.0;
                }
            }
        }
        gauss_jordan(&mut a);
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        if i == j {
                            0.0
                        } else {
                            -a[i][n + j] / a[j][n + j]
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn two_items_by_hand() {
        // G = [[2,1],[1,1]] + I = [[3,1],[1,2]], P = [[2,-1],[-1,3]] / 5:
        // B[0][1] = (1/5) / (3/5) = 1/3, B[1][0] = (1/5) / (2/5) = 1/2
        let m = model(2, &[vec![0, 1], vec![0]], 1.0, 10);
        assert_eq!(m[0].len(), 1);
        assert_eq!(m[0][0].0, 1);
        assert!((m[0][0].1 - 1.0 / 3.0).abs() < 1e-6);
        assert!((m[1][0].1 - 0.5).abs() < 1e-6);
    }

    #[test]
    fn items_bought_together_are_neighbours_and_strangers_are_not() {
        let users = vec![vec![0, 1], vec![0, 1, 1], vec![2], vec![2, 3], vec![3]];
        let m = model(4, &users, 0.5, 10);
        assert_eq!(m[0].iter().map(|e| e.0).collect::<Vec<_>>(), vec![1]);
        assert!(m[1].iter().all(|e| e.0 == 0));
        assert!(m[2].iter().all(|e| e.0 == 3));
        // indices beyond the model are ignored
        let mut g = Gram::new(2, 1.0);
        g.add_user(&[0, 1, 7]);
        assert_eq!(g.neighbors(5).unwrap()[0], vec![(1, 0.5)]);
    }

    #[test]
    fn substitutes_get_negative_weights() {
        // 0 is bought with 1 or with 2, never 1 with 2: given 0, buying 1 means not buying 2
        let users: Vec<Vec<u32>> = (0..10).map(|u| vec![0, 1 + u % 2]).collect();
        let m = model(3, &users, 1.0, 10);
        let w = |i: usize, j: u32| m[i].iter().find(|e| e.0 == j).map(|e| e.1);
        assert!(w(1, 2).is_some_and(|b| b < 0.0), "{m:?}");
        assert!(w(1, 0).is_some_and(|b| b > 0.0), "{m:?}");
        // kept by strength: with keep 1 the stronger of the two links survives
        let one = model(3, &users, 1.0, 1);
        assert_eq!(one[1].len(), 1);
        assert!(one[1][0].1.abs() >= w(1, 0).unwrap().abs().min(w(1, 2).unwrap().abs()));
    }

    #[test]
    fn keep_cuts_and_orders() {
        let users: Vec<Vec<u32>> = (0..20)
            .map(|u| (0..6).filter(|i| (u + i) % 3 != 0).collect())
            .collect();
        let all = model(6, &users, 2.0, 100);
        let two = model(6, &users, 2.0, 2);
        for (a, t) in all.iter().zip(&two) {
            assert_eq!(&a[..a.len().min(2)], &t[..]);
            assert!(a.windows(2).all(|w| w[0].1.abs() >= w[1].1.abs()));
        }
        assert!(model(6, &users, 2.0, 0).iter().all(|r| r.is_empty()));
    }

    #[test]
    fn not_positive_definite_is_none() {
        let mut g = Gram::new(2, 0.0);
        g.add_user(&[0]);
        assert!(g.neighbors(5).is_none());
    }

    /// (XᵀX + λI)⁻¹ XᵀY by Gauss-Jordan in f64, dense: `r[i][j]` = B[i][j].
    fn ridge(n: usize, users: &[(Vec<u32>, Vec<u32>)], lambda: f64) -> Vec<Vec<f64>> {
        let set = |v: &[u32]| {
            let mut v: Vec<usize> = v.iter().map(|&i| i as usize).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        // [G | C]
        let mut a = vec![vec![0.0f64; 2 * n]; n];
        for (i, r) in a.iter_mut().enumerate() {
            r[i] = lambda;
        }
        for (x, y) in users {
            let (x, y) = (set(x), set(y));
            for &i in &x {
                for &j in &x {
                    a[i][j] += 1.0;
                }
                for &j in &y {
                    a[i][n + j] += 1.0;
                }
            }
        }
        gauss_jordan(&mut a);
        a.into_iter().map(|r| r[n..].to_vec()).collect()
    }

    fn adoption(n: usize, users: &[(Vec<u32>, Vec<u32>)], lambda: f32) -> Mat<f32> {
        let mut m = Adoption::new(n, lambda);
        for (x, y) in users {
            m.add_user(x, y);
        }
        m.weights().expect("positive definite")
    }

    #[test]
    fn adoption_by_hand() {
        // one customer had 0 and then first bought 1: G = [1] + λ over item 0, XᵀY[0][1] = 1,
        // so B[0][1] = 1 / (1 + λ); item 1 was bought by nobody before the cut: its row is 0
        let b = adoption(2, &[(vec![0], vec![1])], 1.0);
        assert!((b[(1, 0)] - 0.5).abs() < 1e-6, "{b:?}");
        assert_eq!(b[(0, 0)], 0.0);
        assert_eq!(b[(0, 1)], 0.0);
        assert_eq!(b[(1, 1)], 0.0);
        let m = sparsify(&b, 5);
        assert_eq!(m[0].len(), 1);
        assert_eq!(m[0][0].0, 1);
        assert!(m[1].is_empty());
    }

    #[test]
    fn a_history_leads_to_what_followed_it() {
        // who had 0 went on to 2, who had 1 went on to 3
        let users: Vec<(Vec<u32>, Vec<u32>)> = (0..10)
            .map(|u| (vec![u % 2], vec![2 + u % 2]))
            .chain([(vec![0, 1, 9], vec![])])
            .collect();
        let m = sparsify(&adoption(4, &users, 1.0), 1);
        assert_eq!(m[0][0].0, 2, "{m:?}");
        assert_eq!(m[1][0].0, 3, "{m:?}");
        assert!(m[0][0].1 > 0.0 && m[1][0].1 > 0.0);
    }

    #[test]
    fn blend_scales_each_model_and_skips_an_empty_one() {
        let mut a = Mat::from_fn(2, 2, |i, j| if i == j { 0.0 } else { 2.0 });
        let b = Mat::from_fn(2, 2, |i, j| if i == j { 0.0 } else { 4.0 });
        // each divided by its scale (2 and 4): (1 − w)·1 + w·1 = 1
        blend(&mut a, &b, 0.25);
        assert_eq!(a[(0, 1)], 1.0);
        assert_eq!(a[(1, 0)], 1.0);
        // nothing positive in b: a untouched
        let before = a.clone();
        blend(&mut a, &Mat::<f32>::zeros(2, 2), 0.5);
        assert_eq!(a, before);
        // and w = 0 is A alone, rescaled
        let mut c = Mat::from_fn(2, 2, |i, j| (i + 2 * j) as f32);
        blend(&mut c, &b, 0.0);
        assert_eq!(c[(1, 1)], 3.0 / 2.0);
    }

    #[test]
    fn weights_are_neighbors_dense() {
        let users: Vec<Vec<u32>> = (0..12).map(|u| vec![u % 3, (u + 1) % 4]).collect();
        let mut g = Gram::new(4, 1.5);
        let mut h = Gram::new(4, 1.5);
        for u in &users {
            g.add_user(u);
            h.add_user(u);
        }
        assert_eq!(sparsify(&g.weights().unwrap(), 3), h.neighbors(3).unwrap());
    }

    #[test]
    fn recency_weights() {
        assert_eq!(recency_weight(0, 0), 1.0);
        assert_eq!(recency_weight(5_000, 0), 1.0);
        assert_eq!(recency_weight(0, 10), 1.0);
        assert!((recency_weight(10, 10) - (-1.0f64).exp()).abs() < 1e-12);
        // far down a long history the weight is tiny but never negative nor NaN
        let w = recency_weight(usize::MAX, 1);
        assert!(w >= 0.0 && w.is_finite());
    }

    proptest! {
        #[test]
        fn recency_weight_is_in_0_1_and_never_rises_with_rank(
            rank in 0usize..100_000,
            step in 0usize..1_000,
            recency in 0u32..100_000,
        ) {
            let (a, b) = (recency_weight(rank, recency), recency_weight(rank + step, recency));
            prop_assert!(a > 0.0 || rank > 0);
            prop_assert!((0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b));
            prop_assert!(b <= a);
        }

        #[test]
        fn matches_a_double_precision_inverse(
            users in proptest::collection::vec(proptest::collection::vec(0u32..8, 0..6), 1..30),
            lambda in 0.5f64..50.0,
        ) {
            let n = 8;
            let m = model(n, &users, lambda as f32, n);
            let r = reference(n, &users, lambda);
            for i in 0..n {
                let want: Vec<(usize, f64)> = (0..n).filter(|&j| r[i][j].abs() > 1e-5).map(|j| (j, r[i][j])).collect();
                for &(j, b) in &m[i] {
                    prop_assert!((b as f64 - r[i][j as usize]).abs() < 1e-4 * (1.0 + r[i][j as usize].abs()));
                }
                for (j, _) in want {
                    prop_assert!(m[i].iter().any(|e| e.0 as usize == j));
                }
            }
        }

        #[test]
        fn adoption_matches_a_double_precision_solve(
            users in proptest::collection::vec(
                (proptest::collection::vec(0u32..6, 0..5), proptest::collection::vec(0u32..6, 0..3)),
                1..30,
            ),
            lambda in 0.5f64..50.0,
        ) {
            let n = 6;
            let b = adoption(n, &users, lambda as f32);
            let r = ridge(n, &users, lambda);
            for (i, row) in r.iter().enumerate() {
                for (j, &want) in row.iter().enumerate() {
                    prop_assert!((b[(j, i)] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()));
                }
            }
        }
    }
}
