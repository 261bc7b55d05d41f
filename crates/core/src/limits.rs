//! Argument ranges shared by every SQL function.

/// Largest `k` any function accepts.
pub const MAX_K: i32 = 1000;
/// Largest `recommender.embed_batch_size`.
pub const MAX_EMBED_BATCH: usize = 512;
/// Largest `recommender.embedding_workers`: helper processes one bulk embedding call may start.
pub const MAX_EMBEDDING_WORKERS: usize = 16;
/// Input text is cut to this many bytes (at a character boundary) before tokenising. The encoder
/// reads at most 256 tokens; a WordPiece token covers at most 100 characters of a word, so 64 KiB
/// keeps every realistic text whole while a 1 MB description costs no more than 64 KiB.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Tokens per text the encoder reads (sentence-transformers' max_seq_length for MiniLM).
pub const MAX_TOKENS: usize = 256;

/// Most elements an array argument may have (texts to embed, documents to rerank, cart ids). Bulk
/// work above that belongs in `CALL recommender.refresh_embeddings()`, which commits per batch.
pub const MAX_ARRAY: usize = 10_000;

/// Most recent interactions a user profile is built from (per user, at the clock). With the
/// default decay of 90 days an older interaction weighs almost nothing once a user has this many;
/// a bot with millions of interactions costs no more than this to profile.
pub const PROFILE_INTERACTIONS: usize = 10_000;

/// Why an argument is refused: the message and the hint of a 22023 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadArg {
    pub message: String,
    pub hint: String,
}

/// Checks a result count: 1..=MAX_K.
pub fn check_k(k: i32) -> Result<usize, BadArg> {
    if (1..=MAX_K).contains(&k) {
        Ok(k as usize)
    } else {
        Err(BadArg {
            message: format!("k must be between 1 and {MAX_K}, got {k}"),
            hint: format!("Ask for at least 1 and at most {MAX_K} results; page with OFFSET in the caller if you need more."),
        })
    }
}

/// Checks the length of an array argument: at most MAX_ARRAY elements.
pub fn check_array(len: usize, what: &str) -> Result<(), BadArg> {
    if len <= MAX_ARRAY {
        Ok(())
    } else {
        Err(BadArg {
            message: format!("{len} {what} are too many for one call"),
            hint: format!(
                "Pass at most {MAX_ARRAY} {what} per call; split larger inputs into batches."
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_bounds() {
        assert_eq!(check_k(1), Ok(1));
        assert_eq!(check_k(MAX_K), Ok(MAX_K as usize));
        for bad in [0, -1, MAX_K + 1, i32::MAX, i32::MIN] {
            let e = check_k(bad).unwrap_err();
            assert!(e.message.contains(&bad.to_string()));
            assert!(e.hint.contains("1000"));
        }
    }

    #[test]
    fn array_bounds() {
        assert!(check_array(0, "texts").is_ok());
        assert!(check_array(MAX_ARRAY, "texts").is_ok());
        let e = check_array(100_000, "texts").unwrap_err();
        assert_eq!(e.message, "100000 texts are too many for one call");
        assert!(e.hint.contains("10000 texts"));
    }
}
