//! The text a product is embedded from, and input clean-up.
//!
//! Template (documented in README.md, "Embedded text"):
//!
//! ```text
//! {name}. Category: {category}. Price: {band}. {description}
//! ```
//!
//! Missing parts are left out with their label. The price band rather than the exact price keeps
//! the embedding stable under small price changes: a product is re-embedded only when its text
//! changes, so a price update inside the same band never runs the model.
use sha2::{Digest, Sha256};

use super::limits::MAX_TEXT_BYTES;

/// Descriptions are cut to this many bytes in the template: the encoder reads 256 tokens, and
/// name + category + band come first.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

/// The price band used in the template. Bands are in the store's currency units.
pub fn price_band(price: Option<f64>) -> Option<&'static str> {
    let p = price?;
    if !p.is_finite() || p < 0.0 {
        return None;
    }
    Some(match p {
        p if p < 10.0 => "budget",
        p if p < 50.0 => "affordable",
        p if p < 200.0 => "mid-range",
        p if p < 1000.0 => "premium",
        _ => "luxury",
    })
}

/// Builds the embedded text of a product.
pub fn product_text(
    name: Option<&str>,
    description: Option<&str>,
    category: Option<&str>,
    price: Option<f64>,
) -> String {
    let clean = |s: Option<&str>| s.map(collapse_whitespace).filter(|s| !s.is_empty());
    let mut parts: Vec<String> = Vec::with_capacity(4);
    if let Some(n) = clean(name) {
        parts.push(ensure_period(&n));
    }
    if let Some(c) = clean(category) {
        parts.push(format!("Category: {c}."));
    }
    if let Some(b) = price_band(price) {
        parts.push(format!("Price: {b}."));
    }
    if let Some(d) = clean(description.map(|d| truncate_utf8(d, MAX_DESCRIPTION_BYTES * 2))) {
        parts.push(truncate_utf8(&d, MAX_DESCRIPTION_BYTES).to_string());
    }
    parts.join(" ")
}

/// sha256 of the embedded text: stored with the embedding to tell when it is stale.
pub fn text_hash(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Characters of the description in the reranker's document, and of the whole document.
pub const RERANK_DESCRIPTION_CHARS: usize = 200;
pub const RERANK_DOC_CHARS: usize = 400;

/// The reranker's document for a product: `{name}. Category: {category}. {description}`, the
/// description cut to RERANK_DESCRIPTION_CHARS and the whole to RERANK_DOC_CHARS characters; a
/// missing part is left out with its label and separator (an empty one is kept).
pub fn rerank_doc(name: Option<&str>, category: Option<&str>, description: Option<&str>) -> String {
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let parts: Vec<String> = [
        name.map(str::to_string),
        category.map(|c| format!("Category: {c}")),
        description.map(|d| cut(d, RERANK_DESCRIPTION_CHARS)),
    ]
    .into_iter()
    .flatten()
    .collect();
    cut(&parts.join(". "), RERANK_DOC_CHARS)
}

/// Cuts `s` to at most `max` bytes without splitting a character.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The encoder's input: at most MAX_TEXT_BYTES, NUL-free.
pub fn encoder_input(s: &str) -> std::borrow::Cow<'_, str> {
    let cut = truncate_utf8(s, MAX_TEXT_BYTES);
    if cut.contains('\0') {
        std::borrow::Cow::Owned(cut.replace('\0', " "))
    } else {
        std::borrow::Cow::Borrowed(cut)
    }
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn ensure_period(s: &str) -> String {
    if s.ends_with(['.', '!', '?']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_doc_leaves_out_missing_parts_and_cuts_characters() {
        assert_eq!(
            rerank_doc(Some("Espresso"), Some("Coffee"), Some("Dark")),
            "Espresso. Category: Coffee. Dark"
        );
        assert_eq!(rerank_doc(Some("Espresso"), None, None), "Espresso");
        assert_eq!(rerank_doc(None, Some("Tea"), Some("")), "Category: Tea. ");
        assert_eq!(rerank_doc(None, None, None), "");
        let long = "é".repeat(500);
        let d = rerank_doc(Some(&long), None, Some(&long));
        assert_eq!(d.chars().count(), RERANK_DOC_CHARS);
        let d = rerank_doc(Some("n"), None, Some(&long));
        assert_eq!(d.chars().count(), 3 + RERANK_DESCRIPTION_CHARS);
    }

    #[test]
    fn template_full() {
        let t = product_text(
            Some("Dark roast coffee"),
            Some("Whole  beans,\n1 kg"),
            Some("Coffee"),
            Some(14.5),
        );
        assert_eq!(
            t,
            "Dark roast coffee. Category: Coffee. Price: affordable. Whole beans, 1 kg"
        );
    }

    #[test]
    fn template_missing_parts() {
        assert_eq!(product_text(Some("Mug!"), None, None, None), "Mug!");
        assert_eq!(product_text(None, None, None, None), "");
        assert_eq!(
            product_text(Some("  "), Some(""), Some("Tea"), Some(f64::NAN)),
            "Category: Tea."
        );
    }

    #[test]
    fn bands() {
        assert_eq!(price_band(Some(0.0)), Some("budget"));
        assert_eq!(price_band(Some(9.99)), Some("budget"));
        assert_eq!(price_band(Some(10.0)), Some("affordable"));
        assert_eq!(price_band(Some(199.0)), Some("mid-range"));
        assert_eq!(price_band(Some(999.0)), Some("premium"));
        assert_eq!(price_band(Some(1e9)), Some("luxury"));
        assert_eq!(price_band(Some(-1.0)), None);
        assert_eq!(price_band(Some(f64::INFINITY)), None);
        assert_eq!(price_band(None), None);
    }

    #[test]
    fn same_band_same_text() {
        let a = product_text(Some("x"), None, None, Some(20.0));
        let b = product_text(Some("x"), None, None, Some(45.0));
        assert_eq!(text_hash(&a), text_hash(&b));
        let c = product_text(Some("x"), None, None, Some(55.0));
        assert_ne!(text_hash(&a), text_hash(&c));
    }

    #[test]
    fn truncation_respects_chars() {
        let s = "é".repeat(10); // 2 bytes each
        assert_eq!(truncate_utf8(&s, 5), "éé");
        assert_eq!(truncate_utf8(&s, 100), s);
        let long = "a".repeat(MAX_TEXT_BYTES * 16);
        assert_eq!(encoder_input(&long).len(), MAX_TEXT_BYTES);
        let desc = "ü".repeat(1_000_000);
        let t = product_text(Some("n"), Some(&desc), None, None);
        assert!(t.len() <= MAX_DESCRIPTION_BYTES + 10);
        assert_eq!(encoder_input("a\0b"), "a b");
    }
}
