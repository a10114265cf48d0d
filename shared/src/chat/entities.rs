//! Finding the objects a question names: by id, by name without its schema, across case, quotes
//! and brackets, and by near misses (`costumers` finds `customers`). Pure: it matches against the
//! project's object index and never touches a store.

use std::collections::{BTreeSet, HashMap};

use crate::lineage::NodeKind;
use crate::similar;

/// An object the question names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The object's node id.
    pub id: String,
    pub kind: NodeKind,
    /// The words of the question that named it, as written.
    pub written: String,
    pub how: Match,
}

/// How a name in the question met an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    /// The id itself (case, quotes and brackets aside): `sales.orders`.
    Exact,
    /// The name without its schema: `orders` for `sales.orders`.
    Unqualified,
    /// Words joined as an identifier: `top customers` for `gold.top_customers`.
    Joined,
    /// Within a small edit distance: `costumers` for `customers`.
    Near,
}

/// A word of the question that looks like a name but matches nothing, with the closest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    pub written: String,
    pub closest: Vec<String>,
}

/// What [`find`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub named: Vec<Named>,
    pub unmatched: Vec<Unmatched>,
}

/// Most objects one question is taken to name.
pub const MAX_NAMED: usize = 8;

/// Most words of one question compared with every object for near misses (a question names a few
/// objects; a wall of made-up identifiers is not a question).
const MAX_COMPARED_WORDS: usize = 12;

/// Most unknown names reported, each with its closest names.
const MAX_UNMATCHED: usize = 4;

/// Words never taken for names: English glue and the words questions about SQL are made of.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "all",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "by",
    "can",
    "column",
    "columns",
    "come",
    "comes",
    "contain",
    "contains",
    "data",
    "database",
    "databases",
    "define",
    "defined",
    "defines",
    "definition",
    "depend",
    "depends",
    "describe",
    "do",
    "does",
    "downstream",
    "each",
    "explain",
    "feed",
    "feeds",
    "fill",
    "fills",
    "for",
    "from",
    "function",
    "functions",
    "give",
    "graph",
    "has",
    "have",
    "how",
    "i",
    "in",
    "into",
    "is",
    "it",
    "its",
    "lineage",
    "list",
    "me",
    "model",
    "models",
    "my",
    "object",
    "objects",
    "of",
    "on",
    "or",
    "procedure",
    "procedures",
    "project",
    "read",
    "reads",
    "schema",
    "schemas",
    "show",
    "source",
    "sources",
    "sql",
    "table",
    "tables",
    "tell",
    "that",
    "the",
    "them",
    "there",
    "these",
    "this",
    "those",
    "to",
    "upstream",
    "use",
    "used",
    "uses",
    "using",
    "view",
    "views",
    "was",
    "what",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "write",
    "writes",
    "written",
    "you",
];

/// The objects (never columns) `question` names among `objects` (`(id, kind)`, the project's
/// object index), best matches first, and the name-like words that matched nothing.
pub fn find<'a>(question: &str, objects: &'a [(String, NodeKind)]) -> Found {
    let words = words(question);
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(objects.len());
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::with_capacity(objects.len());
    for (index, (id, _)) in objects.iter().enumerate() {
        by_id.insert(id, index);
        by_name.entry(last_part(id)).or_default().push(index);
    }
    let mut found = Found::default();
    let mut taken = BTreeSet::new();
    let mut consumed = vec![false; words.len()];
    let mut name = |index: usize, written: &str, how: Match, found: &mut Found| {
        let (id, kind) = &objects[index];
        if taken.insert(index) {
            found.named.push(Named { id: id.clone(), kind: *kind, written: written.to_owned(), how });
        }
    };

    // Exact ids first.
    for (position, word) in words.iter().enumerate() {
        if let Some(&index) = by_id.get(word.to_lowercase().as_str()) {
            name(index, word, Match::Exact, &mut found);
            consumed[position] = true;
        }
    }
    // Then neighbouring words joined with `_` (`top customers`): more specific than either word.
    for pair in 0..words.len().saturating_sub(1) {
        if consumed[pair] || consumed[pair + 1] {
            continue;
        }
        let joined = format!("{}_{}", words[pair], words[pair + 1]).to_lowercase();
        if let Some(indexes) = by_name.get(joined.as_str()) {
            for &index in indexes {
                name(index, &format!("{} {}", words[pair], words[pair + 1]), Match::Joined, &mut found);
            }
            consumed[pair] = true;
            consumed[pair + 1] = true;
        }
    }
    // Then single words as names without their schema.
    for (position, word) in words.iter().enumerate() {
        if consumed[position] {
            continue;
        }
        if let Some(indexes) = by_name.get(word.to_lowercase().as_str()) {
            for &index in indexes {
                name(index, word, Match::Unqualified, &mut found);
            }
            consumed[position] = true;
        }
    }
    // Near misses, for words that look like names: not stop words, long enough to mistype, short
    // enough to be a name. Each is compared with every object, so how many are is bounded too.
    let mut compared_words = 0;
    for (position, word) in words.iter().enumerate() {
        if consumed[position] || !looks_like_a_name(word) || word.chars().count() > similar::MAX_COMPARED_CHARS {
            continue;
        }
        compared_words += 1;
        if compared_words > MAX_COMPARED_WORDS {
            break;
        }
        let key = word.to_lowercase();
        let allowed = if key.chars().count() >= 8 { 2 } else { 1 };
        // A qualified word is compared with whole ids, a bare one with names without their schema.
        let qualified = key.contains('.');
        let compared = |id: &'a str| -> &'a str { if qualified { id } else { last_part(id) } };
        let near = similar::all_within(&key, objects, |(id, _)| compared(id), allowed);
        if let Some(best) = near.iter().map(|(score, _)| *score).min() {
            for (_, index) in near.into_iter().filter(|(score, _)| *score == best) {
                name(index, word, Match::Near, &mut found);
            }
        } else if is_identifier_like(word) && found.unmatched.len() < MAX_UNMATCHED {
            // Only words that read as identifiers are reported as unknown names.
            let closest = similar::closest(&key, objects, |(id, _)| compared(id), 5);
            found.unmatched.push(Unmatched { written: word.clone(), closest: closest.into_iter().map(|(id, _)| id.clone()).collect() });
        }
    }
    found.named.sort_by(|a, b| a.how.cmp(&b.how).then_with(|| a.id.cmp(&b.id)));
    found.named.truncate(MAX_NAMED);
    found
}

/// The question's words: runs of letters, digits, `_`, `.`, `#` and `$`, with quotes and brackets
/// dropped and trailing dots removed (`orders.` at the end of a sentence is `orders`).
fn words(question: &str) -> Vec<String> {
    question
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '#' | '$' | '"' | '`' | '[' | ']')))
        .map(|word| word.chars().filter(|c| !matches!(c, '"' | '`' | '[' | ']')).collect::<String>())
        .map(|word| word.trim_matches('.').to_owned())
        .filter(|word| !word.is_empty())
        .collect()
}

fn last_part(id: &str) -> &str {
    id.rsplit('.').next().unwrap_or(id)
}

fn looks_like_a_name(word: &str) -> bool {
    let key = word.to_lowercase();
    key.chars().count() >= 4 && !STOP_WORDS.contains(&key.as_str()) && !key.chars().all(|c| c.is_ascii_digit())
}

/// Written like an identifier, not like a word of prose: with `_`, `.`, a digit, or inner capitals.
fn is_identifier_like(word: &str) -> bool {
    looks_like_a_name(word)
        && (word.contains(['_', '.']) || word.chars().any(|c| c.is_ascii_digit()) || word.chars().skip(1).any(char::is_uppercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Vec<(String, NodeKind)> {
        [
            ("raw.orders", NodeKind::Table),
            ("staging.orders", NodeKind::Table),
            ("raw.customers", NodeKind::Table),
            ("gold.top_customers", NodeKind::View),
            ("dbo.dimcustomer", NodeKind::Table),
            ("dbo.usp_loadsales", NodeKind::FunctionOrProcedure),
        ]
        .into_iter()
        .map(|(id, kind)| (id.to_owned(), kind))
        .collect()
    }

    fn ids(found: &Found) -> Vec<&str> {
        found.named.iter().map(|named| named.id.as_str()).collect()
    }

    #[test]
    fn ids_and_names_are_found_across_case_quotes_and_brackets() {
        assert_eq!(ids(&find("What feeds staging.orders?", &index())), ["staging.orders"]);
        assert_eq!(ids(&find("What feeds \"Staging\".\"Orders\"?", &index())), ["staging.orders"]);
        assert_eq!(ids(&find("describe [dbo].[DimCustomer]", &index())), ["dbo.dimcustomer"]);
        assert_eq!(ids(&find("what depends on DimCustomer", &index())), ["dbo.dimcustomer"]);
    }

    #[test]
    fn a_name_without_its_schema_finds_every_object_of_that_name() {
        let found = find("Where do orders come from?", &index());
        assert_eq!(ids(&found), ["raw.orders", "staging.orders"]);
        assert!(found.named.iter().all(|named| named.how == Match::Unqualified));
    }

    #[test]
    fn neighbouring_words_join_into_a_name() {
        let found = find("what feeds top customers", &index());
        assert_eq!(ids(&found), ["gold.top_customers"]);
        assert_eq!(found.named[0].written, "top customers");
    }

    #[test]
    fn near_misses_are_forgiven_and_unknown_identifiers_get_the_closest_names() {
        let found = find("describe costumers", &index());
        assert_eq!(ids(&found), ["raw.customers"]);
        assert_eq!(found.named[0].how, Match::Near);
        assert_eq!(ids(&find("what feeds gold.top_customerz", &index())), ["gold.top_customers"]);

        let found = find("what feeds fact_shipments?", &index());
        assert!(found.named.is_empty());
        assert_eq!(found.unmatched.len(), 1);
        assert_eq!(found.unmatched[0].written, "fact_shipments");
        assert_eq!(found.unmatched[0].closest.len(), 5);
    }

    #[test]
    fn prose_is_not_taken_for_names() {
        let found = find("What is in the database? Show me everything please", &index());
        assert!(found.named.is_empty());
        assert!(found.unmatched.is_empty(), "{:?}", found.unmatched);
    }

    #[test]
    fn a_wall_of_made_up_identifiers_is_compared_within_bounds() {
        let objects: Vec<(String, NodeKind)> = (0..2_000).map(|n| (format!("raw.table_{n:05}"), NodeKind::Table)).collect();
        let long_words: Vec<String> = (0..15).map(|n| format!("made_up_{n}_{}", "x".repeat(250))).collect();
        let found = find(&long_words.join(" "), &objects);
        assert!(found.named.is_empty() && found.unmatched.is_empty(), "words longer than a name are not names: {found:?}");

        let short_words: Vec<String> = (0..30).map(|n| format!("fact_{n}_shipments")).collect();
        let found = find(&short_words.join(" "), &objects);
        assert_eq!(found.unmatched.len(), MAX_UNMATCHED, "a few unknown names are reported, not every word");
        assert!(found.unmatched.iter().all(|unmatched| unmatched.closest.len() == 5));
    }
}
