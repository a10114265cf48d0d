//! Identifier-aware tokenizing and BM25 scoring, shared by both backends so that a query finds the
//! same chunks wherever it runs.
//!
//! SQL names are compounds: `order_items`, `customerId`, `dbo.DimCustomer`. A token stream keeps each
//! whole identifier part (`order_items`, `customerid`) and adds its pieces (`order`, `items`,
//! `customer`, `id`), so a search for "customer" finds `DimCustomer` and a search for `order_items`
//! ranks the exact name first.

/// BM25's term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25's length normalization.
pub const B: f64 = 0.75;
/// Tokens longer than this are cut (a hostile 1 MB "identifier" must not become a 1 MB term).
pub const MAX_TOKEN_CHARS: usize = 64;

/// The lowercase search tokens of `text`, in order, repeats kept (they are term frequencies).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for word in text.split(|character: char| !(character.is_alphanumeric() || character == '_')) {
        if word.is_empty() {
            continue;
        }
        let pieces = split_identifier(word);
        let whole = truncate(&word.to_lowercase());
        if (pieces.len() != 1 || pieces[0] != whole) && whole.chars().count() > 1 {
            tokens.push(whole);
        }
        tokens.extend(pieces.into_iter().filter(|piece| piece.chars().count() > 1 || piece.chars().all(|c| c.is_ascii_digit())));
    }
    tokens
}

/// The distinct tokens of a query, in first-seen order.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    tokenize(query).into_iter().filter(|term| seen.insert(term.clone())).collect()
}

/// The pieces of one word: split at underscores and at camelCase and letter/digit boundaries
/// (`XMLHttpRequest2` → `xml`, `http`, `request`, `2`).
fn split_identifier(word: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for part in word.split('_').filter(|part| !part.is_empty()) {
        let characters: Vec<char> = part.chars().collect();
        let mut start = 0;
        for index in 1..characters.len() {
            let (previous, current) = (characters[index - 1], characters[index]);
            let next_is_lower = characters.get(index + 1).is_some_and(|next| next.is_lowercase());
            let boundary = (previous.is_lowercase() && current.is_uppercase())
                || (previous.is_uppercase() && current.is_uppercase() && next_is_lower)
                || (previous.is_alphabetic() != current.is_alphabetic());
            if boundary {
                pieces.push(truncate(&characters[start..index].iter().collect::<String>().to_lowercase()));
                start = index;
            }
        }
        pieces.push(truncate(&characters[start..].iter().collect::<String>().to_lowercase()));
    }
    pieces
}

fn truncate(token: &str) -> String {
    token.chars().take(MAX_TOKEN_CHARS).collect()
}

/// Corpus figures BM25 needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corpus {
    /// Chunks in the corpus.
    pub documents: u64,
    /// Tokens in all chunks together.
    pub tokens: u64,
}

impl Corpus {
    fn average_length(&self) -> f64 {
        if self.documents == 0 { 0.0 } else { self.tokens as f64 / self.documents as f64 }
    }

    /// BM25 inverse document frequency of a term found in `containing` chunks (never negative).
    pub fn idf(&self, containing: u64) -> f64 {
        let (n, df) = (self.documents as f64, containing as f64);
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// One term's contribution to a chunk's score: it occurs `frequency` times in a chunk of
    /// `length` tokens, and in `containing` chunks of the corpus.
    pub fn term_score(&self, frequency: u32, length: u32, containing: u64) -> f64 {
        let frequency = f64::from(frequency);
        let average = self.average_length().max(1.0);
        let normalized = K1 * (1.0 - B + B * f64::from(length) / average);
        self.idf(containing) * frequency * (K1 + 1.0) / (frequency + normalized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_kept_whole_and_split() {
        assert_eq!(tokenize("order_items"), ["order_items", "order", "items"]);
        assert_eq!(tokenize("customerId"), ["customerid", "customer", "id"]);
        assert_eq!(tokenize("dbo.DimCustomer"), ["dbo", "dimcustomer", "dim", "customer"]);
        assert_eq!(tokenize("XMLHttpRequest2"), ["xmlhttprequest2", "xml", "http", "request", "2"]);
        assert_eq!(tokenize("SELECT a, total FROM t"), ["select", "total", "from"]);
    }

    #[test]
    fn query_terms_are_distinct() {
        assert_eq!(query_terms("orders ORDERS order_id"), ["orders", "order_id", "order", "id"]);
    }

    #[test]
    fn rarer_terms_and_shorter_chunks_score_higher() {
        let corpus = Corpus { documents: 100, tokens: 2000 };
        assert!(corpus.term_score(1, 20, 2) > corpus.term_score(1, 20, 50));
        assert!(corpus.term_score(1, 10, 5) > corpus.term_score(1, 40, 5));
        assert!(corpus.term_score(3, 20, 5) > corpus.term_score(1, 20, 5));
        assert!(corpus.idf(100) > 0.0);
    }

    #[test]
    fn long_tokens_are_bounded() {
        let long = "a".repeat(10_000);
        assert!(tokenize(&long).iter().all(|token| token.chars().count() <= MAX_TOKEN_CHARS));
    }
}
