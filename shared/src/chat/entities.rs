//! Finding what a question names: objects by id, by name without its schema, across case, quotes
//! and brackets, by loose words ("the customer ltv view") and by near misses (`costumers` finds
//! `customers`); columns by bare or qualified name, or by a phrase ("customer tier", or "tax
//! amount" for `TaxAmt`). Pure: it
//! matches against the project's object index and the columns the store found for the question's
//! phrases ([`column_keys`], [`shortened_runs`]), and never touches a store.
//!
//! Precedence, strongest first: an exact id or a qualified column; an object's name (words joined
//! with `_`, or one word); a column named by several words or by one written as an identifier;
//! objects named loosely; a column named by one plain word; near misses of objects.

use std::collections::{BTreeSet, HashMap};

use crate::lineage::{NodeKind, column_key, column_part};
use crate::similar;

/// An object or a column the question names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The node id (`object#column` for a column).
    pub id: String,
    pub kind: NodeKind,
    /// The words of the question that named it, as written.
    pub written: String,
    pub how: Match,
    /// Other nodes the same words could mean, best first (a loose name's runners-up, the other
    /// columns of an ambiguous column name).
    pub alternatives: Vec<String>,
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
    /// Words found among the parts of a name, and a kind word: `customer ltv view` for
    /// `analytics.customer_ltv_analysis`. A guess, which the answer says.
    Loose,
    /// Within a small edit distance: `costumers` for `customers`.
    Near,
}

/// The columns the store holds for each key of [`column_keys`]: their ids.
pub type ColumnHits = HashMap<String, Vec<String>>;

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

/// Most words read for column phrases (each word starts up to three phrases, each a key the store
/// looks up).
const MAX_PHRASE_WORDS: usize = 16;

/// Most runs of words matched loosely against every object.
const MAX_LOOSE_RUNS: usize = 6;

/// Most runs of words read as shortened column names (each a range of keys the store looks up).
const MAX_SHORTENED_RUNS: usize = 6;

/// Most columns taken for one name; the others it could mean are offered instead.
pub const MAX_COLUMNS_PER_NAME: usize = 3;

/// Most other objects offered for a loose name.
const MAX_ALTERNATIVES: usize = 4;

/// Words that say what kind of object is meant, and the kinds they mean.
const KIND_WORDS: &[(&str, &[NodeKind])] = &[
    ("table", &[NodeKind::Table]),
    ("tables", &[NodeKind::Table]),
    ("view", &[NodeKind::View, NodeKind::MaterializedView]),
    ("views", &[NodeKind::View, NodeKind::MaterializedView]),
    ("procedure", &[NodeKind::FunctionOrProcedure]),
    ("procedures", &[NodeKind::FunctionOrProcedure]),
    ("proc", &[NodeKind::FunctionOrProcedure]),
    ("function", &[NodeKind::FunctionOrProcedure]),
    ("query", &[NodeKind::Query]),
];

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

/// Words of the question that may name a column: one word (a qualified one's last part, qualified
/// by the rest), or a run of two or three neighbouring words that are not stop words.
struct Span {
    start: usize,
    /// Exclusive.
    end: usize,
    key: String,
    qualifier: Option<String>,
}

fn spans(words: &[String]) -> Vec<Span> {
    let mut spans = Vec::new();
    for start in 0..words.len().min(MAX_PHRASE_WORDS) {
        let word = &words[start];
        if word.chars().count() > similar::MAX_COMPARED_CHARS {
            continue;
        }
        if let Some((qualifier, last)) = word.rsplit_once('.') {
            if !qualifier.is_empty() && !last.is_empty() {
                spans.push(Span { start, end: start + 1, key: column_key(last), qualifier: Some(qualifier.to_lowercase()) });
            }
            continue;
        }
        if !is_content_word(word) {
            continue;
        }
        spans.push(Span { start, end: start + 1, key: column_key(word), qualifier: None });
        for end in start + 2..=(start + 3).min(words.len()) {
            if !is_content_word(&words[end - 1])
                || words[end - 1].contains('.')
                || words[end - 1].chars().count() > similar::MAX_COMPARED_CHARS
            {
                break;
            }
            spans.push(Span { start, end, key: words[start..end].iter().map(|word| column_key(word)).collect(), qualifier: None });
        }
    }
    spans
}

/// The keys the store should look columns up by for `question` ([`crate::store::LineageStore::find_columns`]).
pub fn column_keys(question: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    spans(&words(question)).into_iter().map(|span| span.key).filter(|key| !key.is_empty() && seen.insert(key.clone())).collect()
}

/// A run of two or three words of a question that may name a column by the words shortened, as
/// schemas often are: `tax amount` for `TaxAmt`, `order quantity` for `OrderQty`, `product
/// description` for `ProductDesc`. The first word is taken whole, so the store can find the
/// candidates as a range of keys ([`ShortenedRun::prefix`]); [`ShortenedRun::names`] keeps those
/// whose name's parts shorten the words in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortenedRun {
    /// The run's key ([`column_keys`]), under which the columns it names are filed for [`find`].
    pub key: String,
    /// The start of every such column's key: the first word and the second's first letter.
    pub prefix: String,
    words: Vec<String>,
}

impl ShortenedRun {
    /// Whether the column named `name` is this run's words, each whole or shortened, in order. Ids
    /// are lowercase, so the name is read as its key, cut wherever the words allow
    /// (`taxamt`: `tax`, `amt`).
    pub fn names(&self, name: &str) -> bool {
        let key: Vec<char> = column_key(name).chars().take(similar::MAX_COMPARED_CHARS + 1).collect();
        if key.is_empty() || key.len() > similar::MAX_COMPARED_CHARS {
            return false;
        }
        // reached[end]: the key's first `end` letters are the words so far.
        let mut reached = vec![false; key.len() + 1];
        reached[0] = true;
        for word in &self.words {
            let mut next = vec![false; key.len() + 1];
            for start in (0..key.len()).filter(|&start| reached[start]) {
                for end in start + 1..=key.len() {
                    let part: String = key[start..end].iter().collect();
                    next[end] |= shortens(&part, word);
                }
            }
            reached = next;
        }
        reached[key.len()]
    }
}

/// The runs of plain words of `question` that may name a column shortened, skipping those whose
/// key `found` says already named one; at most [`MAX_SHORTENED_RUNS`].
pub fn shortened_runs(question: &str, found: impl Fn(&str) -> bool) -> Vec<ShortenedRun> {
    let words = words(question);
    let mut seen = BTreeSet::new();
    spans(&words)
        .into_iter()
        .filter(|span| span.qualifier.is_none() && span.end - span.start >= 2)
        .filter(|span| words[span.start..span.end].iter().all(|word| word.chars().all(|c| c.is_alphabetic())))
        .filter(|span| !found(&span.key) && seen.insert(span.key.clone()))
        .map(|span| {
            let words: Vec<String> = words[span.start..span.end].iter().map(|word| word.to_lowercase()).collect();
            let prefix = format!("{}{}", words[0], words[1].chars().next().unwrap_or_default());
            ShortenedRun { key: span.key, prefix, words }
        })
        .take(MAX_SHORTENED_RUNS)
        .collect()
}

/// Files each of `candidates` (columns whose keys start with a run's prefix) under the key of every
/// run it names shortened.
pub fn add_shortened(hits: &mut ColumnHits, runs: &[ShortenedRun], candidates: Vec<String>) {
    for id in candidates {
        let Some(part) = column_part(&id) else { continue };
        let key = column_key(part);
        for run in runs.iter().filter(|run| key.starts_with(&run.prefix) && run.names(part)) {
            let ids = hits.entry(run.key.clone()).or_default();
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
        }
    }
}

/// Whether `part` (of a name) is `word`, or a shortening of it: two letters or more, the same first
/// letter, the rest in the word's order (`amt` of `amount`, `qty` of `quantity`, `desc` of
/// `description`).
fn shortens(part: &str, word: &str) -> bool {
    if part == word {
        return true;
    }
    let mut letters = word.chars();
    part.chars().count() >= 2
        && part.len() < word.len()
        && part.chars().next() == word.chars().next()
        && part.chars().all(|wanted| letters.any(|letter| letter == wanted))
}

/// What `question` names among `objects` (`(id, kind)`, the project's object index) and the
/// columns found for its phrases (`columns`, by key), best matches first, and the name-like words
/// that matched nothing. A column name is one [`Named`]: its `id` and `alternatives` together are
/// every column of that name the question can mean (only those of an object it names, when it
/// names one that has it).
pub fn find(question: &str, objects: &[(String, NodeKind)], columns: &ColumnHits) -> Found {
    let words = words(question);
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(objects.len());
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::with_capacity(objects.len());
    for (index, (id, _)) in objects.iter().enumerate() {
        by_id.insert(id, index);
        by_name.entry(last_part(id)).or_default().push(index);
    }
    let mut matcher = Matcher {
        words: &words,
        objects,
        found: Found::default(),
        taken: BTreeSet::new(),
        consumed: vec![false; words.len()],
        loose_runs: 0,
    };
    let spans = spans(&words);

    // Exact ids first.
    for (position, word) in words.iter().enumerate() {
        if let Some(&index) = by_id.get(word.to_lowercase().as_str()) {
            matcher.object(index, position..position + 1, Match::Exact, Vec::new());
        }
    }
    // Qualified columns: `staging.orders.amount`, `orders.amount`.
    for span in spans.iter().filter(|span| span.qualifier.is_some()) {
        let qualifier = span.qualifier.as_deref().unwrap_or_default();
        let owned = columns_where(columns, &span.key, |object| object == qualifier || last_part(object) == qualifier);
        matcher.columns(span, owned, Match::Exact);
    }
    // Then neighbouring words joined with `_` (`top customers`): more specific than either word.
    for pair in 0..words.len().saturating_sub(1) {
        let joined = format!("{}_{}", words[pair], words[pair + 1]).to_lowercase();
        if let Some(indexes) = by_name.get(joined.as_str()) {
            for &index in indexes {
                matcher.object(index, pair..pair + 2, Match::Joined, Vec::new());
            }
        }
    }
    // Columns named by several words, or by one written as an identifier: exact keys.
    let named_objects: BTreeSet<String> = matcher.found.named.iter().map(|named| named.id.clone()).collect();
    let owned_if_named = |key: &str| {
        let owned = columns_where(columns, key, |object| named_objects.contains(object));
        if owned.is_empty() { columns.get(key).cloned().unwrap_or_default() } else { owned }
    };
    let mut unqualified: Vec<&Span> = spans.iter().filter(|span| span.qualifier.is_none()).collect();
    unqualified.sort_by_key(|span| (std::cmp::Reverse(span.end - span.start), span.start));
    for span in &unqualified {
        let ids = owned_if_named(&span.key);
        // Plain words that name a column in a dozen tables (`order date`) are prose; written as an
        // identifier (`customer_id`) it is a name however many tables hold it.
        let identifier = span.end - span.start == 1 && is_identifier_like(&words[span.start]);
        if identifier || (span.end - span.start > 1 && ids.len() <= MAX_COLUMNS_PER_NAME) {
            let how = phrase_match(span, &ids);
            matcher.columns(span, ids, how);
        }
    }
    // Objects named loosely by two words or more.
    matcher.loose(2);
    // Single words as names without their schema.
    for (position, word) in words.iter().enumerate() {
        if let Some(indexes) = by_name.get(word.to_lowercase().as_str()) {
            for &index in indexes {
                matcher.object(index, position..position + 1, Match::Unqualified, Vec::new());
            }
        }
    }
    // A phrase that names a column in too many tables to take may name one of an object named
    // since (`the tax amount on fact sales rows`, `tax amount in FactSales`).
    let named_since: BTreeSet<String> = matcher
        .found
        .named
        .iter()
        .filter(|named| named.kind != NodeKind::Column && !named_objects.contains(&named.id))
        .map(|named| named.id.clone())
        .collect();
    for span in unqualified.iter().filter(|span| span.end - span.start > 1 && !named_since.is_empty()) {
        let owned = columns_where(columns, &span.key, |object| named_since.contains(object));
        if owned.len() <= MAX_COLUMNS_PER_NAME {
            let how = phrase_match(span, &owned);
            matcher.columns(span, owned, how);
        }
    }
    // Objects named loosely by one word and a kind (`the revenue view`), then columns by one plain
    // word, when it names a few: a word that names a column in a dozen tables (`revenue`) is prose.
    matcher.loose(1);
    for span in unqualified.iter().filter(|span| span.end - span.start == 1) {
        let ids = owned_if_named(&span.key);
        if ids.len() <= MAX_COLUMNS_PER_NAME {
            matcher.columns(span, ids, Match::Unqualified);
        }
    }
    matcher.near_misses();
    let mut found = matcher.found;
    found.named.sort_by(|a, b| a.how.cmp(&b.how).then_with(|| a.id.cmp(&b.id)));
    found.named.truncate(MAX_NAMED);
    found
}

/// How a run of words met the columns `ids`: joined, or, where it met a shortened name (`tax amount`,
/// `TaxAmt`), loosely: a guess, which the answer says.
fn phrase_match(span: &Span, ids: &[String]) -> Match {
    let whole = ids.iter().all(|id| column_part(id).map(column_key).as_deref() == Some(span.key.as_str()));
    if whole { Match::Joined } else { Match::Loose }
}

/// The columns of `key` whose object passes `wanted`.
fn columns_where(columns: &ColumnHits, key: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    columns.get(key).into_iter().flatten().filter(|id| object_of(id).is_some_and(&wanted)).cloned().collect()
}

/// The object of a column's id (`staging.orders` of `staging.orders#amount`).
pub fn object_of(id: &str) -> Option<&str> {
    column_part(id).map(|part| &id[..id.len() - part.len() - 1])
}

/// The state of one [`find`]: which words are used up, which nodes named.
struct Matcher<'a> {
    words: &'a [String],
    objects: &'a [(String, NodeKind)],
    found: Found,
    taken: BTreeSet<String>,
    consumed: Vec<bool>,
    /// Runs compared loosely so far.
    loose_runs: usize,
}

impl<'a> Matcher<'a> {
    fn free(&self, positions: &std::ops::Range<usize>) -> bool {
        positions.clone().all(|position| !self.consumed[position])
    }

    /// The kinds a kind word right after the words at `positions` (or right before them) says.
    fn kinds_beside(&self, positions: &std::ops::Range<usize>) -> &'static [NodeKind] {
        let kind_word = |position: Option<usize>| {
            position
                .and_then(|position| self.words.get(position))
                .and_then(|word| KIND_WORDS.iter().find(|(kind_word, _)| word.eq_ignore_ascii_case(kind_word)))
                .map(|(_, kinds)| *kinds)
        };
        kind_word(Some(positions.end)).or_else(|| kind_word(positions.start.checked_sub(1))).unwrap_or(&[])
    }

    fn written(&self, positions: &std::ops::Range<usize>) -> String {
        self.words[positions.clone()].join(" ")
    }

    /// Names object `index` by the words at `positions`, unless another match used them. A word
    /// may name several objects of one kind of match (`orders` in two schemas).
    fn object(&mut self, index: usize, positions: std::ops::Range<usize>, how: Match, alternatives: Vec<String>) {
        let (id, kind) = &self.objects[index];
        // `the customer ltv view` is not the table `customer_ltv`.
        let kinds = self.kinds_beside(&positions);
        if matches!(how, Match::Joined | Match::Unqualified) && !kinds.is_empty() && !kinds.contains(kind) {
            return;
        }
        let same_match = self.found.named.iter().any(|named| named.how == how && named.written == self.written(&positions));
        if !self.free(&positions) && !same_match {
            return;
        }
        if self.taken.insert(id.clone()) {
            let written = self.written(&positions);
            self.found.named.push(Named { id: id.clone(), kind: *kind, written, how, alternatives });
        }
        positions.for_each(|position| self.consumed[position] = true);
    }

    /// Names the columns `ids` (one name: the first, with the others as alternatives) by `span`'s words.
    fn columns(&mut self, span: &Span, ids: Vec<String>, how: Match) {
        let positions = span.start..span.end;
        let ids: Vec<String> = ids.into_iter().filter(|id| !self.taken.contains(id)).collect();
        if ids.is_empty() || !self.free(&positions) {
            return;
        }
        self.taken.extend(ids.iter().cloned());
        let written = self.written(&positions);
        let mut ids = ids.into_iter();
        let id = ids.next().unwrap_or_default();
        self.found.named.push(Named { id, kind: NodeKind::Column, written, how, alternatives: ids.collect() });
        positions.for_each(|position| self.consumed[position] = true);
    }

    /// Objects named by a run of free neighbouring content words (of two or more when `words` is 2;
    /// of one, with a kind word in the singular beside it, when it is 1): the object whose id holds
    /// the most of them (a plural's `s` aside), of the kind said, with the shortest id; the others
    /// offered. At most [`MAX_LOOSE_RUNS`] runs of a question are compared with every object.
    fn loose(&mut self, words: usize) {
        let mut start = 0;
        while start < self.words.len() && self.loose_runs < MAX_LOOSE_RUNS {
            let usable = |position: usize| {
                let word = &self.words[position];
                !self.consumed[position]
                    && is_content_word(word)
                    && !word.contains('.')
                    && word.chars().count() <= similar::MAX_COMPARED_CHARS
            };
            if !usable(start) {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < self.words.len() && usable(end) && end - start < MAX_COMPARED_WORDS {
                end += 1;
            }
            let kinds = self.kinds_beside(&(start..end));
            // One word needs a kind in the singular: `the raw tables` names no one table.
            let singular =
                [Some(end), start.checked_sub(1)].into_iter().flatten().filter_map(|position| self.words.get(position)).any(|word| {
                    KIND_WORDS.iter().any(|(kind_word, _)| word.eq_ignore_ascii_case(kind_word)) && !word.to_lowercase().ends_with('s')
                });
            let matched = if words >= 2 { end - start >= 2 } else { end - start == 1 && !kinds.is_empty() && singular };
            if matched {
                self.loose_run(start..end, kinds);
                self.loose_runs += 1;
            }
            start = end.max(start + 1);
        }
    }

    fn loose_run(&mut self, run: std::ops::Range<usize>, kinds: &[NodeKind]) {
        let words: Vec<String> =
            self.words[run.clone()].iter().map(|word| word.to_lowercase()).filter(|word| word.chars().count() >= 3).collect();
        let needed = if kinds.is_empty() { 2 } else { 1 };
        // (score, id length, id, index, words held)
        let mut ranked: Vec<(usize, usize, &str, usize, usize)> = Vec::new();
        for (index, (id, kind)) in self.objects.iter().enumerate() {
            let held = words
                .iter()
                .filter(|word| {
                    id.contains(word.as_str())
                        || word.strip_suffix('s').is_some_and(|singular| singular.len() >= 3 && id.contains(singular))
                })
                .count();
            let kind_said = kinds.contains(kind);
            // Every word of a two-word run, or all but one of a longer run.
            if held >= needed && held + 1 >= words.len().max(2) {
                ranked.push((held * 2 + usize::from(kind_said), id.len(), id, index, held));
            }
        }
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
        let Some(&(_, _, _, best, best_held)) = ranked.first() else { return };
        // The others that hold as many of the words (of another kind, or with a longer name).
        let alternatives =
            ranked.iter().skip(1).filter(|other| other.4 == best_held).take(MAX_ALTERNATIVES).map(|other| other.2.to_owned()).collect();
        self.object(best, run, Match::Loose, alternatives);
    }

    /// Near misses, for free words that look like names: not stop words, long enough to mistype,
    /// short enough to be a name. Each is compared with every object, so how many are is bounded too.
    fn near_misses(&mut self) {
        let mut compared_words = 0;
        for position in 0..self.words.len() {
            let word = &self.words[position];
            if self.consumed[position] || !looks_like_a_name(word) || word.chars().count() > similar::MAX_COMPARED_CHARS {
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
            let near = similar::all_within(&key, self.objects, |(id, _)| compared(id), allowed);
            if let Some(best) = near.iter().map(|(score, _)| *score).min() {
                for (_, index) in near.into_iter().filter(|(score, _)| *score == best) {
                    self.object(index, position..position + 1, Match::Near, Vec::new());
                }
            } else if is_identifier_like(word) && self.found.unmatched.len() < MAX_UNMATCHED {
                // Only words that read as identifiers are reported as unknown names.
                let closest = similar::closest(&key, self.objects, |(id, _)| compared(id), 5);
                self.found
                    .unmatched
                    .push(Unmatched { written: word.clone(), closest: closest.into_iter().map(|(id, _)| id.clone()).collect() });
            }
        }
    }
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

/// Whether a word (lowercase) is one questions are made of rather than a name.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// A word that can be part of a name: not a stop word, not a number, not a lone letter.
fn is_content_word(word: &str) -> bool {
    let key = word.to_lowercase();
    key.chars().count() >= 2 && !STOP_WORDS.contains(&key.as_str()) && !key.chars().all(|c| c.is_ascii_digit())
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
            ("analytics.customer_ltv_analysis", NodeKind::View),
            ("staging.customer_ltv", NodeKind::Table),
            ("marts.revenue_mart", NodeKind::Table),
            ("gold.revenue", NodeKind::View),
            ("staging.customer_transactions", NodeKind::Table),
            ("gold.dim_customer", NodeKind::Table),
            ("dw.factsales", NodeKind::Table),
            ("sales.salesorderheader", NodeKind::Table),
            ("sales.salesorderdetail", NodeKind::Table),
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
        assert_eq!(ids(&find("What feeds staging.orders?", &index(), &ColumnHits::new())), ["staging.orders"]);
        assert_eq!(ids(&find("What feeds \"Staging\".\"Orders\"?", &index(), &ColumnHits::new())), ["staging.orders"]);
        assert_eq!(ids(&find("describe [dbo].[DimCustomer]", &index(), &ColumnHits::new())), ["dbo.dimcustomer"]);
        assert_eq!(ids(&find("what depends on DimCustomer", &index(), &ColumnHits::new())), ["dbo.dimcustomer"]);
    }

    #[test]
    fn a_name_without_its_schema_finds_every_object_of_that_name() {
        let found = find("Where do orders come from?", &index(), &ColumnHits::new());
        assert_eq!(ids(&found), ["raw.orders", "staging.orders"]);
        assert!(found.named.iter().all(|named| named.how == Match::Unqualified));
    }

    #[test]
    fn neighbouring_words_join_into_a_name() {
        let found = find("what feeds top customers", &index(), &ColumnHits::new());
        assert_eq!(ids(&found), ["gold.top_customers"]);
        assert_eq!(found.named[0].written, "top customers");
    }

    #[test]
    fn near_misses_are_forgiven_and_unknown_identifiers_get_the_closest_names() {
        let found = find("describe costumers", &index(), &ColumnHits::new());
        assert_eq!(ids(&found), ["raw.customers"]);
        assert_eq!(found.named[0].how, Match::Near);
        assert_eq!(ids(&find("what feeds gold.top_customerz", &index(), &ColumnHits::new())), ["gold.top_customers"]);

        let found = find("what feeds fact_shipments?", &index(), &ColumnHits::new());
        assert!(found.named.is_empty());
        assert_eq!(found.unmatched.len(), 1);
        assert_eq!(found.unmatched[0].written, "fact_shipments");
        assert_eq!(found.unmatched[0].closest.len(), 5);
    }

    /// What the store would find for the question's column keys, from these columns.
    fn hits(question: &str, columns: &[&str]) -> ColumnHits {
        let mut hits = ColumnHits::new();
        for key in column_keys(question) {
            let found: Vec<String> =
                columns.iter().filter(|id| column_part(id).map(column_key) == Some(key.clone())).map(|id| (*id).to_owned()).collect();
            if !found.is_empty() {
                hits.insert(key, found);
            }
        }
        // The second lookup: the runs that named nothing, by their prefixes.
        let runs = shortened_runs(question, |key| hits.contains_key(key));
        let candidates = columns
            .iter()
            .filter(|id| runs.iter().any(|run| column_part(id).map(column_key).is_some_and(|key| key.starts_with(&run.prefix))))
            .map(|id| (*id).to_owned())
            .collect();
        add_shortened(&mut hits, &runs, candidates);
        hits
    }

    const COLUMNS: &[&str] = &[
        "gold.dim_customer#customer_tier",
        "analytics.customer_ltv_analysis#customer_tier",
        "gold.dim_customer#lifetime_value",
        "staging.customer_transactions#total_amount",
        "gold.dim_customer#total_amount",
        "raw.orders#orders",
        "gold.revenue#revenue",
        "dw.factsales#taxamt",
        "dw.factsales#taxrate",
        "sales.salesorderheader#taxamt",
        "purchasing.purchaseorderheader#taxamt",
        "dw.factinternetsales#taxamt",
        "sales.salesorderdetail#orderqty",
        "sales.salesorderdetail#orderdate",
    ];

    fn column_find(question: &str) -> Found {
        find(question, &index(), &hits(question, COLUMNS))
    }

    #[test]
    fn columns_are_named_bare_qualified_or_by_a_phrase() {
        let found = column_find("Where is customer_tier computed?");
        assert_eq!(found.named.len(), 1, "{found:?}");
        let named = &found.named[0];
        assert_eq!((named.kind, named.written.as_str()), (NodeKind::Column, "customer_tier"));
        let mut every: Vec<&str> = std::iter::once(named.id.as_str()).chain(named.alternatives.iter().map(String::as_str)).collect();
        every.sort();
        assert_eq!(every, ["analytics.customer_ltv_analysis#customer_tier", "gold.dim_customer#customer_tier"]);

        assert_eq!(ids(&column_find("where does gold.dim_customer.lifetime_value come from")), ["gold.dim_customer#lifetime_value"]);
        assert_eq!(ids(&column_find("where does dim_customer.lifetime_value come from")), ["gold.dim_customer#lifetime_value"]);
        let found = column_find("Where does lifetime value come from?");
        assert_eq!(ids(&found), ["gold.dim_customer#lifetime_value"]);
        assert_eq!(found.named[0].written, "lifetime value");
        assert_eq!(ids(&column_find("how is the customer tier derived")).len(), 1);
    }

    #[test]
    fn a_name_is_read_as_the_words_each_whole_or_shortened_to_its_first_letter_and_some_after() {
        let run = |question: &str| shortened_runs(question, |_| false).into_iter().max_by_key(|run| run.words.len()).expect("a run");
        assert!(run("tax amount").names("TaxAmt") && run("tax amount").names("taxamt") && run("tax amount").names("tax_amount"));
        assert!(run("order quantity").names("OrderQty"));
        assert!(run("sales order number").names("SalesOrderNum"));
        assert!(!run("tax amount").names("TaxRate") && !run("tax amount").names("TaxAmtUsd") && !run("tax amount").names("Tax"));
        assert!(shortens("amt", "amount") && shortens("qty", "quantity") && shortens("desc", "description"));
        assert!(shortens("tax", "tax"));
        assert!(!shortens("a", "amount"), "one letter is too little to go on");
        assert!(!shortens("mat", "amount"), "the first letter is kept");
        assert!(!shortens("amtx", "amount"), "every letter is the word's, in order");
        assert!(!shortens("amounts", "amount"));
    }

    #[test]
    fn words_name_a_column_shortened_and_the_answer_is_a_guess() {
        let found = column_find("Where does the tax amount on dw.factsales come from?");
        assert_eq!(ids(&found), ["dw.factsales", "dw.factsales#taxamt"], "{found:?}");
        let column = &found.named[1];
        assert_eq!((column.how, column.written.as_str()), (Match::Loose, "tax amount"));
        // Four tables have one: named alone, the words are prose, but beside an object named later
        // (by its name, or loosely) they are that object's column.
        assert!(column_find("how is tax amount calculated").named.is_empty());
        assert_eq!(ids(&column_find("how is the tax amount in FactSales computed")), ["dw.factsales", "dw.factsales#taxamt"]);
        let found = column_find("where does the tax amount on fact sales rows come from");
        assert_eq!(ids(&found), ["dw.factsales", "dw.factsales#taxamt"], "{found:?}");
        assert_eq!(ids(&column_find("order quantity per line")), ["sales.salesorderdetail#orderqty"]);
        // A name written whole is not looked for shortened.
        assert!(shortened_runs("where does lifetime value come from", |key| key == "lifetimevalue").is_empty());
        let runs = shortened_runs("the order quantity", |_| false);
        assert_eq!(runs.iter().map(|run| run.prefix.as_str()).collect::<Vec<_>>(), ["orderq"]);
    }

    #[test]
    fn a_column_name_in_a_named_object_means_that_objects_column() {
        let found = column_find("Where does total_amount in staging.customer_transactions come from?");
        assert_eq!(ids(&found), ["staging.customer_transactions", "staging.customer_transactions#total_amount"]);
        assert!(found.named.iter().all(|named| named.alternatives.is_empty()), "{found:?}");
        // Named alone, it means every column of that name.
        let found = column_find("where does total_amount come from");
        assert_eq!(found.named.len(), 1);
        assert_eq!(found.named[0].alternatives.len(), 1);
    }

    #[test]
    fn a_plain_word_that_names_columns_everywhere_is_prose() {
        let everywhere: Vec<String> = (0..12).map(|n| format!("gold.report_{n}#turnover")).collect();
        let everywhere: Vec<&str> = everywhere.iter().map(String::as_str).collect();
        let everywhere: Vec<&str> = everywhere
            .iter()
            .chain(&[
                "gold.report_1#turnover_value",
                "gold.report_2#turnover_value",
                "gold.report_3#turnover_value",
                "gold.report_4#turnover_value",
            ])
            .copied()
            .collect();
        for question in ["turnover by month", "the turnover value by month"] {
            assert!(find(question, &index(), &hits(question, &everywhere)).named.is_empty(), "{question}");
        }
        // Written as an identifier, or qualified, it is a name.
        let question = "where does gold.report_3.turnover come from";
        assert_eq!(ids(&find(question, &index(), &hits(question, &everywhere))), ["gold.report_3#turnover"]);
        let few = ["gold.revenue#turnover", "staging.orders#turnover"];
        let question = "turnover by month";
        assert_eq!(find(question, &index(), &hits(question, &few)).named.len(), 1);
    }

    #[test]
    fn an_object_of_a_plain_words_name_comes_before_a_column_of_it() {
        assert_eq!(ids(&column_find("what feeds orders")), ["raw.orders", "staging.orders"]);
        assert_eq!(ids(&column_find("describe gold.revenue")), ["gold.revenue"]);
    }

    #[test]
    fn loose_names_match_by_their_parts_and_kind_and_offer_the_others() {
        let found = column_find("Which tables feed the customer ltv view?");
        assert_eq!(ids(&found), ["analytics.customer_ltv_analysis"]);
        let named = &found.named[0];
        assert_eq!((named.how, named.written.as_str()), (Match::Loose, "customer ltv"));
        assert_eq!(named.alternatives, ["staging.customer_ltv"]);
        // Without the kind, the shorter name fits best.
        assert_eq!(ids(&column_find("what feeds the customer ltv"))[0], "staging.customer_ltv");
        assert_eq!(ids(&column_find("what feeds the revenue mart")), ["marts.revenue_mart"]);
        // Names apart in the sentence are two names, not one loose name.
        let found = column_find("what do customers and orders hold");
        assert!(found.named.iter().all(|named| named.how != Match::Loose), "{found:?}");
    }

    #[test]
    fn prose_is_not_taken_for_names() {
        let found = find("What is in the database? Show me everything please", &index(), &ColumnHits::new());
        assert!(found.named.is_empty());
        assert!(found.unmatched.is_empty(), "{:?}", found.unmatched);
    }

    #[test]
    fn a_wall_of_made_up_identifiers_is_compared_within_bounds() {
        let objects: Vec<(String, NodeKind)> = (0..2_000).map(|n| (format!("raw.table_{n:05}"), NodeKind::Table)).collect();
        let long_words: Vec<String> = (0..15).map(|n| format!("made_up_{n}_{}", "x".repeat(250))).collect();
        let found = find(&long_words.join(" "), &objects, &ColumnHits::new());
        assert!(found.named.is_empty() && found.unmatched.is_empty(), "words longer than a name are not names: {found:?}");

        // Runs of words, each compared with every object: a few, not every run of the question.
        let names = ["red", "green", "blue", "amber", "violet", "indigo", "scarlet", "cyan", "olive", "teal"];
        let marts: Vec<(String, NodeKind)> = names.iter().map(|name| (format!("mart.alpha_{name}_beta"), NodeKind::Table)).collect();
        let runs: Vec<String> = names.iter().map(|name| format!("alpha {name} and")).collect();
        let found = find(&runs.join(" "), &marts, &ColumnHits::new());
        assert_eq!(found.named.iter().filter(|named| named.how == Match::Loose).count(), MAX_LOOSE_RUNS, "{found:?}");
        let keys = column_keys(&"word ".repeat(1000));
        assert!(keys.len() <= MAX_PHRASE_WORDS * 3, "{}", keys.len());

        let short_words: Vec<String> = (0..30).map(|n| format!("fact_{n}_shipments")).collect();
        let found = find(&short_words.join(" "), &objects, &ColumnHits::new());
        assert_eq!(found.unmatched.len(), MAX_UNMATCHED, "a few unknown names are reported, not every word");
        assert!(found.unmatched.iter().all(|unmatched| unmatched.closest.len() == 5));
    }
}
