//! How tokenised texts are grouped into encoder runs.
//!
//! A run is padded to its longest text, and a backend can only notice a query cancel between runs
//! (ONNX Runtime cannot be interrupted from Postgres' signal handler). So a run is bounded both in
//! rows (`recommender.embed_batch_size`) and in padded tokens: at the ~2,500 tokens/s measured for
//! one MiniLM thread (BENCHMARKS.md), `MAX_RUN_TOKENS` keeps a run, and therefore the delay before a
//! cancel or statement_timeout is honoured, well under a second. Batching more rows buys no speed on
//! this CPU path (batches of 8 to 64 texts run at the same products/s), so the bound costs nothing;
//! 256 tokens also keep the activations ONNX Runtime's arena holds between calls small (~6 MiB for
//! the encoder) and, texts being sorted by length, cut padding: a rerank of 21 texts runs ~15 %
//! faster than in one run of up to 1,024 tokens (BENCHMARKS.md, "Model runtime").
use std::ops::Range;

/// Padded tokens (rows x longest row) per encoder run.
pub const MAX_RUN_TOKENS: usize = 256;

/// Splits texts whose token counts are `sorted_lens` (ascending) into consecutive runs of at most
/// `max_rows` rows and at most `max_tokens` padded tokens. A single text longer than `max_tokens`
/// gets a run of its own.
pub fn runs(sorted_lens: &[usize], max_rows: usize, max_tokens: usize) -> Vec<Range<usize>> {
    let max_rows = max_rows.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &len) in sorted_lens.iter().enumerate() {
        let rows = i + 1 - start;
        // ascending order: this text is the longest of the run so far
        if rows > 1 && (rows > max_rows || rows * len > max_tokens) {
            out.push(start..i);
            start = i;
        }
    }
    if start < sorted_lens.len() {
        out.push(start..sorted_lens.len());
    }
    out
}

/// The distinct values of `items` in first-seen order, and for each item the index of its value
/// among them: identical texts are embedded once per call.
pub fn distinct<'a>(items: &[&'a str]) -> (Vec<&'a str>, Vec<usize>) {
    let mut seen: std::collections::HashMap<&'a str, usize> = Default::default();
    let mut values = Vec::new();
    let slots = items
        .iter()
        .map(|&t| {
            *seen.entry(t).or_insert_with(|| {
                values.push(t);
                values.len() - 1
            })
        })
        .collect();
    (values, slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_texts_fill_rows_long_texts_fill_tokens() {
        assert_eq!(runs(&[], 32, 1024), Vec::<Range<usize>>::new());
        assert_eq!(runs(&[10; 40], 32, 1024), vec![0..32, 32..40]);
        assert_eq!(runs(&[256; 5], 32, 1024), vec![0..4, 4..5]);
        assert_eq!(runs(&[5, 5, 600, 700], 32, 1024), vec![0..2, 2..3, 3..4]);
        assert_eq!(runs(&[2000], 32, 1024), vec![0..1]);
        assert_eq!(runs(&[3, 3, 3], 0, 1024), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn distinct_keeps_first_seen_order() {
        let (v, s) = distinct(&["b", "a", "b", "", "a"]);
        assert_eq!(v, vec!["b", "a", ""]);
        assert_eq!(s, vec![0, 1, 0, 2, 1]);
        let (v, s) = distinct(&[]);
        assert!(v.is_empty() && s.is_empty());
    }

    proptest! {
        #[test]
        fn runs_cover_everything_in_order_within_bounds(
            mut lens in proptest::collection::vec(1usize..300, 0..200),
            max_rows in 1usize..64,
            max_tokens in 1usize..4096,
        ) {
            lens.sort_unstable();
            let rs = runs(&lens, max_rows, max_tokens);
            let mut next = 0;
            for r in &rs {
                prop_assert_eq!(r.start, next);
                prop_assert!(!r.is_empty());
                prop_assert!(r.len() <= max_rows);
                let padded = r.len() * lens[r.end - 1];
                prop_assert!(r.len() == 1 || padded <= max_tokens);
                next = r.end;
            }
            prop_assert_eq!(next, lens.len());
        }
    }
}
