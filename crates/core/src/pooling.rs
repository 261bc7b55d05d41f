//! Sentence-transformers pooling: the mean of the token vectors under the attention mask,
//! then L2 normalisation.

/// Mean-pools `hidden` ([batch, seq, dim], row-major) over positions where `mask` ([batch, seq]) is
/// non-zero, and L2-normalises each row. A row with an empty mask pools to zeros.
pub fn mean_pool_normalize(
    hidden: &[f32],
    mask: &[i64],
    batch: usize,
    seq: usize,
    dim: usize,
) -> Vec<Vec<f32>> {
    assert_eq!(hidden.len(), batch * seq * dim, "hidden state shape");
    assert_eq!(mask.len(), batch * seq, "mask shape");
    (0..batch)
        .map(|b| {
            let mut acc = vec![0f64; dim];
            let mut n = 0f64;
            for t in 0..seq {
                if mask[b * seq + t] != 0 {
                    let row = &hidden[(b * seq + t) * dim..(b * seq + t + 1) * dim];
                    acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x as f64);
                    n += 1.0;
                }
            }
            if n > 0.0 {
                acc.iter_mut().for_each(|a| *a /= n);
            }
            normalize(&acc)
        })
        .collect()
}

/// L2 normalisation; the zero vector stays zero.
pub fn normalize(v: &[f64]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| (x / norm) as f32).collect()
    } else {
        vec![0.0; v.len()]
    }
}

/// The L2-normalised weighted sum of `vectors` (pairs of weight and vector), `dim` wide: a cart's
/// centre (every weight 1) and a user's preference (decayed interaction weights). Vectors of
/// another width are skipped; `None` when nothing contributes (no vectors, or a zero sum).
pub fn weighted_mean<'a>(
    vectors: impl IntoIterator<Item = (f64, &'a [f32])>,
    dim: usize,
) -> Option<Vec<f32>> {
    let mut acc = vec![0f64; dim];
    for (w, v) in vectors.into_iter().filter(|(_, v)| v.len() == dim) {
        acc.iter_mut().zip(v).for_each(|(a, &x)| *a += w * x as f64);
    }
    acc.iter().any(|x| *x != 0.0).then(|| normalize(&acc))
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn weighted_mean_normalises_skips_other_widths_and_empty() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 1.0];
        let c = [5.0f32, 5.0, 5.0];
        let m = weighted_mean([(3.0, &a[..]), (4.0, &b[..]), (9.0, &c[..])], 2).unwrap();
        assert!((m[0] - 0.6).abs() < 1e-6 && (m[1] - 0.8).abs() < 1e-6);
        assert_eq!(weighted_mean(std::iter::empty(), 2), None);
        assert_eq!(weighted_mean([(1.0, &a[..]), (-1.0, &a[..])], 2), None);
    }

    use super::*;

    #[test]
    fn pools_only_masked_tokens() {
        // batch 2, seq 3, dim 2
        let hidden = [
            1.0, 0.0, 3.0, 0.0, 100.0, 100.0, 0.0, 2.0, 0.0, 4.0, 0.0, 6.0,
        ];
        let mask = [1, 1, 0, 1, 1, 1];
        let out = mean_pool_normalize(&hidden, &mask, 2, 3, 2);
        assert_eq!(out[0], vec![1.0, 0.0]);
        assert_eq!(out[1], vec![0.0, 1.0]);
    }

    #[test]
    fn empty_mask_is_zero() {
        let out = mean_pool_normalize(&[1.0, 2.0], &[0], 1, 1, 2);
        assert_eq!(out[0], vec![0.0, 0.0]);
    }

    #[test]
    fn unit_norm() {
        let out = mean_pool_normalize(&[3.0, 4.0, 6.0, 8.0], &[1, 1], 1, 2, 2);
        let n: f32 = out[0].iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-6);
        assert!((cosine(&out[0], &[0.6, 0.8]) - 1.0).abs() < 1e-6);
    }
}
