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
use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};

/// Most items a model may span. The build holds two items × items f32 matrices at once (the
/// Cholesky factor and the inverse): 2 × 400 MB at this size, 2 × 100 MB at the default 5,000.
pub const MAX_ITEMS: usize = 10_000;
/// Most neighbours an item may keep.
pub const MAX_NEIGHBORS: usize = 1_000;

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
        let n = self.g.nrows();
        let llt = self.g.llt(Side::Lower).ok()?;
        drop(self.g);
        let p = llt.inverse();
        drop(llt);
        let diag: Vec<f32> = (0..n).map(|j| p[(j, j)]).collect();
        let mut out = Vec::with_capacity(n);
        let mut row: Vec<(u32, f32)> = Vec::with_capacity(n);
        for i in 0..n {
            row.clear();
            // P is symmetric: row i is column i, contiguous
            let col = p.col(i);
            for j in 0..n {
                let b = -col[j] / diag[j];
                if j != i && b != 0.0 && b.is_finite() {
                    row.push((j as u32, b));
                }
            }
            out.push(top(&mut row, keep));
        }
        Some(out)
    }
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

    proptest! {
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
    }
}
