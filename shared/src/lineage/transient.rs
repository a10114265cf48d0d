//! Transients: what a script only passes data through. T-SQL's temporary tables (`#work`) and table
//! variables (`@rows`), tables created `TEMPORARY`, tables the script creates and drops again, and a
//! trigger's rows (`inserted`, `NEW`). None of them is a graph object; each is replaced, wherever a
//! fact reads it, by what filled it, so `INSERT INTO #t SELECT … FROM a; INSERT INTO b SELECT … FROM
//! #t` gives `b READS_FROM a`, column by column where the columns are known.
//!
//! A transient is scoped to the routine whose body names it (a procedure's `#work` is its own), and
//! falls back to the script's: a trigger function's `NEW` is filled by the `CREATE TRIGGER` that
//! names its table, which the script states outside the function.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::extract::{Facts, LinkFact, Name, OutputColumn, Ref};
use super::model::EdgeKind;

/// How many transients deep a replacement follows (`#a` filled from `#b` filled from …).
const MAX_DEPTH: usize = 64;

/// `(scope, transient key)`: the scope is the routine's key, or empty for the script.
type Key = (String, String);

#[derive(Default)]
struct Fills {
    /// What filled each transient, as objects.
    objects: HashMap<Key, Vec<Ref>>,
    /// What filled each column of a transient.
    columns: HashMap<(Key, String), Vec<Ref>>,
    /// Objects whose columns a transient holds under their own names (`SELECT * INTO #t FROM a`,
    /// a trigger's rows).
    wildcards: HashMap<Key, Vec<Name>>,
}

/// Replaces every transient in `facts` by what filled it, and removes the transients themselves.
pub fn settle(facts: &mut Facts) {
    let temporaries = std::mem::take(&mut facts.temporaries);
    let is_transient = |name: &Name| name.is_transient() || temporaries.contains(&name.key);
    if !facts_mention_transients(facts, &is_transient) {
        return;
    }
    let scope_of = |via: &Option<Name>| via.as_ref().map(|routine| routine.key.clone()).unwrap_or_default();
    let mut fills = Fills::default();

    // What fills each transient: the links that write it.
    let links = std::mem::take(&mut facts.links);
    let mut kept = Vec::with_capacity(links.len());
    for link in links {
        let written = match (&link.kind, &link.source) {
            (EdgeKind::ReadsFrom | EdgeKind::Derives, Ref::Object(name) | Ref::Column(name, _)) if is_transient(name) => true,
            // A key on a work table relates nothing that lasts.
            (EdgeKind::References, source) if source.object().is_some_and(is_transient) => continue,
            _ => false,
        };
        if !written {
            kept.push(link);
            continue;
        }
        let scope = scope_of(&link.via);
        match &link.source {
            Ref::Object(name) => fills.objects.entry((scope, name.key.clone())).or_default().push(link.target),
            Ref::Column(name, column) => fills.columns.entry(((scope, name.key.clone()), column.clone())).or_default().push(link.target),
            _ => {}
        }
    }
    for wildcard in std::mem::take(&mut facts.wildcards) {
        if is_transient(&wildcard.target) {
            fills.wildcards.entry((scope_of(&wildcard.via), wildcard.target.key.clone())).or_default().push(wildcard.source);
        } else {
            facts.wildcards.push(wildcard);
        }
    }
    // An `INSERT INTO #t SELECT …` without a column list fills #t's declared columns by position.
    let declared: HashMap<String, Vec<String>> = facts
        .objects
        .iter()
        .filter(|object| is_transient(&object.name))
        .map(|object| (object.name.key.clone(), object.columns.iter().map(|(column, _)| column.to_lowercase()).collect()))
        .collect();
    for positional in std::mem::take(&mut facts.positional) {
        if !is_transient(&positional.target) {
            facts.positional.push(positional);
            continue;
        }
        let key = (scope_of(&positional.via), positional.target.key.clone());
        let columns = declared.get(&positional.target.key);
        for (position, output) in positional.outputs.iter().enumerate() {
            let OutputColumn { name, sources, wildcard, .. } = output;
            if let Some(source) = wildcard {
                fills.wildcards.entry(key.clone()).or_default().push(source.clone());
                continue;
            }
            let column =
                columns.and_then(|columns| columns.get(position).cloned()).or_else(|| name.as_ref().map(|name| name.to_lowercase()));
            if let Some(column) = column {
                fills.columns.entry((key.clone(), column)).or_default().extend(sources.iter().cloned());
            }
        }
    }

    // The expressions that compute a transient's columns, for the lasting columns filled from them.
    let mut expressions: HashMap<(String, String), String> = HashMap::new();
    for expression in &facts.expressions {
        if is_transient(&expression.object) {
            expressions.insert((expression.object.key.clone(), expression.column.clone()), expression.text.clone());
        }
    }
    let computed: HashSet<(String, String)> =
        facts.expressions.iter().map(|expression| (expression.object.key.clone(), expression.column.clone())).collect();
    for link in &kept {
        if let (Ref::Column(target, target_column), Ref::Column(source, source_column)) = (&link.source, &link.target)
            && !is_transient(target)
            && is_transient(source)
            && !computed.contains(&(target.key.clone(), target_column.clone()))
            && let Some(text) = expressions.get(&(source.key.clone(), source_column.clone()))
        {
            facts.expressions.push(super::extract::ExpressionFact {
                object: target.clone(),
                column: target_column.clone(),
                text: text.clone(),
            });
        }
    }

    // Every remaining link, with its transients replaced.
    let mut replacer = Replacer { fills: &fills, is_transient: &is_transient, memo: HashMap::new() };
    let mut seen = HashSet::new();
    for link in kept {
        let scope = scope_of(&link.via);
        let sources = replacer.replace(&scope, &link.source, 0);
        let targets = replacer.replace(&scope, &link.target, 0);
        for source in &sources {
            for target in &targets {
                let replaced = LinkFact { source: source.clone(), target: target.clone(), ..link.clone() };
                if seen.insert((replaced.kind, replaced.source.clone(), replaced.target.clone(), replaced.via.clone())) {
                    facts.links.push(replaced);
                }
            }
        }
    }
    for positional in &mut facts.positional {
        let scope = scope_of(&positional.via);
        for output in &mut positional.outputs {
            let sources: BTreeSet<Ref> = output.sources.iter().flat_map(|source| replacer.replace(&scope, source, 0)).collect();
            output.sources = sources.into_iter().collect();
            if output.wildcard.as_ref().is_some_and(is_transient) {
                output.wildcard = None;
            }
        }
    }

    facts.objects.retain(|object| !is_transient(&object.name));
    facts.writes.retain(|write| !is_transient(&write.target));
    facts.expressions.retain(|expression| !is_transient(&expression.object));
    facts.calls.retain(|call| !call.caller.object().is_some_and(is_transient));
    facts.temporaries = temporaries;
}

fn facts_mention_transients(facts: &Facts, is_transient: &impl Fn(&Name) -> bool) -> bool {
    let mentions = |reference: &Ref| match reference {
        Ref::Object(name) | Ref::Column(name, _) => is_transient(name),
        Ref::AmbiguousColumn(names, _) => names.iter().any(is_transient),
        Ref::Query(_) => false,
    };
    facts.links.iter().any(|link| mentions(&link.source) || mentions(&link.target))
        || facts.objects.iter().any(|object| is_transient(&object.name))
        || facts.wildcards.iter().any(|wildcard| is_transient(&wildcard.target) || is_transient(&wildcard.source))
        || facts.positional.iter().any(|positional| is_transient(&positional.target))
        || facts.writes.iter().any(|write| is_transient(&write.target))
}

/// Replaces transient references by what filled them, remembering each answer.
struct Replacer<'a, F: Fn(&Name) -> bool> {
    fills: &'a Fills,
    is_transient: &'a F,
    memo: HashMap<(String, Ref), Vec<Ref>>,
}

impl<F: Fn(&Name) -> bool> Replacer<'_, F> {
    /// `reference` with its transient replaced (itself when it names none; nothing when nothing
    /// filled it).
    fn replace(&mut self, scope: &str, reference: &Ref, depth: usize) -> Vec<Ref> {
        match reference {
            Ref::Object(name) | Ref::Column(name, _) if (self.is_transient)(name) => {}
            Ref::AmbiguousColumn(names, column) if names.iter().any(|name| (self.is_transient)(name)) => {
                // The catalog settles which of the lasting tables has the column.
                let lasting: Vec<Name> = names.iter().filter(|name| !(self.is_transient)(name)).cloned().collect();
                return match lasting.as_slice() {
                    [] => Vec::new(),
                    _ => vec![Ref::AmbiguousColumn(lasting, column.clone())],
                };
            }
            other => return vec![other.clone()],
        }
        if depth >= MAX_DEPTH {
            return Vec::new();
        }
        let memo_key = (scope.to_owned(), reference.clone());
        if let Some(known) = self.memo.get(&memo_key) {
            return known.clone();
        }
        // A transient that fills itself (`INSERT INTO #t SELECT … FROM #t`) ends here.
        self.memo.insert(memo_key.clone(), Vec::new());
        let mut found = BTreeSet::new();
        let fill_scope =
            |key: &Key, map_has: &dyn Fn(&Key) -> bool| -> Key { if map_has(key) { key.clone() } else { (String::new(), key.1.clone()) } };
        match reference {
            Ref::Object(name) => {
                let key = fill_scope(&(scope.to_owned(), name.key.clone()), &|key| {
                    self.fills.objects.contains_key(key) || self.fills.wildcards.contains_key(key)
                });
                let direct = self.fills.objects.get(&key).cloned().unwrap_or_default();
                let wildcards = self.fills.wildcards.get(&key).cloned().unwrap_or_default();
                for source in direct.into_iter().chain(wildcards.into_iter().map(Ref::Object)) {
                    found.extend(self.replace(&key.0, &source, depth + 1));
                }
            }
            Ref::Column(name, column) => {
                let key = fill_scope(&(scope.to_owned(), name.key.clone()), &|key| {
                    self.fills.columns.contains_key(&(key.clone(), column.clone())) || self.fills.wildcards.contains_key(key)
                });
                match self.fills.columns.get(&(key.clone(), column.clone())).cloned() {
                    Some(sources) => {
                        for source in &sources {
                            found.extend(self.replace(&key.0, source, depth + 1));
                        }
                    }
                    None => {
                        for source in self.fills.wildcards.get(&key).cloned().unwrap_or_default() {
                            found.extend(self.replace(&key.0, &Ref::Column(source, column.clone()), depth + 1));
                        }
                    }
                }
            }
            _ => {}
        }
        let found: Vec<Ref> = found.into_iter().collect();
        self.memo.insert(memo_key, found.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::extract::Extractor;

    fn name(key: &str) -> Name {
        Name::from_parts(&key.split('.').map(str::to_owned).collect::<Vec<_>>())
    }

    fn object_links(facts: &Facts) -> Vec<(String, String)> {
        let mut links: Vec<(String, String)> = facts
            .links
            .iter()
            .filter_map(|link| match (&link.source, &link.target) {
                (Ref::Object(source), Ref::Object(target)) => Some((source.key.clone(), target.key.clone())),
                _ => None,
            })
            .collect();
        links.sort();
        links
    }

    #[test]
    fn a_chain_of_work_tables_links_the_real_tables_on_both_ends() {
        let mut facts = Facts::default();
        let mut extractor = Extractor::new(&mut facts, 1);
        extractor.writes(&name("#a"), BTreeSet::from([name("raw.x"), name("raw.y")]));
        extractor.writes(&name("@b"), BTreeSet::from([name("#a")]));
        extractor.writes(&name("#a"), BTreeSet::from([name("#a")]));
        extractor.writes(&name("gold.z"), BTreeSet::from([name("@b")]));
        facts.finish();
        assert_eq!(object_links(&facts), [("gold.z".to_owned(), "raw.x".to_owned()), ("gold.z".to_owned(), "raw.y".to_owned())]);
    }

    #[test]
    fn a_routine_keeps_its_own_work_tables() {
        let mut facts = Facts::default();
        let mut first = Extractor::new(&mut facts, 1);
        first.routine = Some(name("p1"));
        first.writes(&name("#w"), BTreeSet::from([name("a")]));
        first.writes(&name("t1"), BTreeSet::from([name("#w")]));
        let mut second = Extractor::new(&mut facts, 9);
        second.routine = Some(name("p2"));
        second.writes(&name("#w"), BTreeSet::from([name("b")]));
        second.writes(&name("t2"), BTreeSet::from([name("#w")]));
        facts.finish();
        let links = object_links(&facts);
        assert!(links.contains(&("t1".to_owned(), "a".to_owned())) && links.contains(&("t2".to_owned(), "b".to_owned())), "{links:?}");
        assert!(!links.contains(&("t1".to_owned(), "b".to_owned())) && !links.contains(&("t2".to_owned(), "a".to_owned())), "{links:?}");
        assert!(links.iter().all(|(source, target)| !source.starts_with('#') && !target.starts_with('#')), "{links:?}");
    }
}
