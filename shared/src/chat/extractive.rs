//! The `extractive` provider's writer: answers composed from the evidence alone, with no language
//! model and no network. Every sentence it writes is a fact from the knowledge base (or says that
//! there is none), in Markdown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::Mode;
use super::entities::{Match, is_stop_word};
use super::evidence::{Entity, Evidence, Intent, Lineage, abridged, column_text, computed_at, defined_at, display_id, edge_at};
use crate::lineage::search::{query_terms, tokenize};
use crate::lineage::{Direction, GraphEdge, NodeKind};

/// Most chains listed for one object and direction.
const MAX_CHAINS: usize = 12;

/// The answer to the question the evidence was gathered for.
pub fn answer(evidence: &Evidence) -> String {
    let mut text = String::new();
    match evidence.mode {
        Mode::Text => {
            text.push_str(
                "Text mode answers from the question alone, and this server has no language model configured \
                 (`LLM_PROVIDER=extractive`), so there is nothing to answer with here. Ask in semantic mode to \
                 search the ingested SQL, or in graph or deep mode to get the objects and lineage your question names.",
            );
            return text;
        }
        Mode::Semantic => {
            statements(&mut text, evidence);
            return text;
        }
        Mode::Graph | Mode::Deep => {}
    }
    for unmatched in &evidence.unmatched {
        let _ = write!(text, "I found no object named `{}` in project `{}`.", unmatched.written, evidence.project);
        if !unmatched.closest.is_empty() {
            let closest: Vec<String> = unmatched.closest.iter().map(|name| format!("`{name}`")).collect();
            let _ = write!(text, " The closest names are {}.", closest.join(", "));
        }
        text.push_str("\n\n");
    }
    if evidence.entities.is_empty() {
        match &evidence.overview {
            Some(overview) if !overview.counts.is_empty() => {
                let _ = writeln!(text, "Project `{}` holds:", evidence.project);
                for (kind, count) in &overview.counts {
                    let _ = write!(text, "- {count} {}", plural(*kind, *count));
                    if let Some(examples) = overview.examples.get(kind).filter(|examples| !examples.is_empty()) {
                        let shown: Vec<String> = examples.iter().map(|name| format!("`{name}`")).collect();
                        let more = count.saturating_sub(examples.len() as u64);
                        let _ =
                            write!(text, ": {}{}", shown.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() });
                    }
                    text.push('\n');
                }
                let _ = writeln!(text, "\n{} edges from {} ingested files in all.", overview.edges, overview.files);
            }
            _ if evidence.unmatched.is_empty() => {
                let _ = writeln!(
                    text,
                    "Project `{}` holds no objects yet: ingest SQL files first (`POST /api/v1/files/upload`).",
                    evidence.project
                );
            }
            _ => {}
        }
    }
    for entity in &evidence.entities {
        guessed(&mut text, entity);
        if entity.is_column() {
            column(&mut text, entity, evidence.intent);
            text.push('\n');
            continue;
        }
        match evidence.intent {
            Intent::Upstream if evidence.asks_how => {
                chains(&mut text, entity, Direction::Upstream);
                definition(&mut text, entity);
            }
            Intent::Upstream => chains(&mut text, entity, Direction::Upstream),
            Intent::Downstream => chains(&mut text, entity, Direction::Downstream),
            Intent::Describe => describe(&mut text, entity),
            Intent::General | Intent::Overview => {
                describe(&mut text, entity);
                chains(&mut text, entity, Direction::Upstream);
                chains(&mut text, entity, Direction::Downstream);
            }
        }
        text.push('\n');
    }
    if evidence.mode == Mode::Deep && !evidence.hits.is_empty() {
        statements(&mut text, evidence);
    }
    text.trim_end().to_owned()
}

/// A short title for a conversation that starts with `question`.
pub fn title(question: &str) -> String {
    let words: Vec<&str> = question.split_whitespace().take(8).collect();
    let mut title = words.join(" ").trim_end_matches(['?', '.', '!', ',', ':', ';']).to_owned();
    if question.split_whitespace().count() > 8 {
        title.push('…');
    }
    let mut characters = title.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => "New conversation".to_owned(),
    }
}

/// Says which object a loose or mistyped name was taken for, and what else it could mean.
fn guessed(text: &mut String, entity: &Entity) {
    if !matches!(entity.how, Match::Loose | Match::Near) {
        return;
    }
    let _ = write!(text, "I took \"{}\" to mean `{}` ({}).", entity.written, display_id(&entity.node.id), kind_name(entity.node.kind));
    if !entity.alternatives.is_empty() {
        let others: Vec<String> = entity.alternatives.iter().map(|id| format!("`{}`", display_id(id))).collect();
        let _ = write!(text, " Other names that fit: {}.", others.join(", "));
    }
    text.push_str("\n\n");
}

/// A column: what holds it, the expression that computes it and where, and its lineage.
fn column(text: &mut String, entity: &Entity, intent: Intent) {
    let node = &entity.node;
    let id = display_id(&node.id);
    let parent = node.parent.as_deref().map(|parent| format!(" of `{parent}`")).unwrap_or_default();
    let _ = writeln!(text, "**`{id}`** is a column{parent}{}.", defined_at(node));
    if let Some(data_type) = node.properties.get("data_type").and_then(|value| value.as_str()) {
        let _ = writeln!(text, "Its type is `{data_type}`.");
    }
    if let Some(expression) = entity.expression() {
        let at = computed_at(entity).map(|at| at.trim().trim_start_matches('(').trim_end_matches(')').to_owned());
        let _ = writeln!(
            text,
            "It is computed{}:\n\n```sql\n{} = {}\n```",
            at.map(|at| format!(" {at}")).unwrap_or_default(),
            node.name,
            abridged(expression, 1200)
        );
    }
    if !entity.alternatives.is_empty() {
        let others: Vec<String> = entity.alternatives.iter().map(|other| format!("`{}`", display_id(other))).collect();
        let _ = writeln!(text, "\"{}\" also names {}: ask about one by its table.", entity.written, others.join(", "));
    }
    // Both ways: what a column is made from explains it, and what uses it is what a change reaches.
    let ways = if intent == Intent::Downstream {
        [Direction::Downstream, Direction::Upstream]
    } else {
        [Direction::Upstream, Direction::Downstream]
    };
    for direction in ways {
        column_chains(text, entity, direction);
    }
    // The expression of each column upstream that computes rather than passes its value.
    let computed: Vec<(String, &str)> = entity
        .upstream
        .nodes
        .values()
        .filter_map(|node| {
            node.properties.get("expression").and_then(|value| value.as_str()).map(|expression| (display_id(&node.id), expression))
        })
        .collect();
    if !computed.is_empty() {
        let _ = writeln!(text, "Computed along the way:");
        for (id, expression) in computed.iter().take(MAX_CHAINS) {
            let _ = writeln!(text, "- `{id}` = `{}`", abridged(expression, 300));
        }
    }
}

/// A column's lineage one way, each step with the file and line of the statement that makes it.
fn column_chains(text: &mut String, entity: &Entity, direction: Direction) {
    let (lineage, arrow, verb) = match direction {
        Direction::Upstream => (&entity.upstream, " ← ", "comes from"),
        Direction::Downstream => (&entity.downstream, " → ", "is used by"),
    };
    let id = display_id(&entity.node.id);
    if lineage.edges.is_empty() {
        let none = match direction {
            Direction::Upstream => "no other column in the ingested SQL (it is not filled from another column)",
            Direction::Downstream => "no other column in the ingested SQL",
        };
        let _ = writeln!(text, "`{id}` {verb} {none}.");
        return;
    }
    let paths = paths(lineage, &entity.node.id, direction);
    let _ = writeln!(text, "`{id}` {verb}:");
    for path in paths.iter().take(MAX_CHAINS) {
        let mut previous = entity.node.id.as_str();
        let mut steps = Vec::new();
        for step in path {
            let (from, to) = match direction {
                Direction::Upstream => (previous, step.as_str()),
                Direction::Downstream => (step.as_str(), previous),
            };
            let at = lineage.edges.iter().find(|edge| edge.source == from && edge.target == to).map(edge_at).unwrap_or_default();
            steps.push(format!("`{}`{at}", display_id(step)));
            previous = step;
        }
        let _ = writeln!(text, "- {}", steps.join(arrow));
    }
    if paths.len() > MAX_CHAINS {
        let _ = writeln!(text, "- … and {} more chains", paths.len() - MAX_CHAINS);
    }
    if lineage.truncated {
        let _ = writeln!(text, "(The lineage goes further than shown here.)");
    }
}

fn describe(text: &mut String, entity: &Entity) {
    let node = &entity.node;
    let _ = writeln!(text, "**`{}`** is a {}{}.", node.id, kind_name(node.kind), defined_at(node));
    // One step each way: what it is made from and what reads it.
    for (lineage, direction, verb) in
        [(&entity.upstream, Direction::Upstream, "It reads"), (&entity.downstream, Direction::Downstream, "It is read by")]
    {
        let near: BTreeSet<String> = lineage
            .edges
            .iter()
            .filter(|edge| lineage.depth.get(&edge.id) == Some(&1))
            .map(|edge| format!("`{}`", if direction == Direction::Upstream { &edge.target } else { &edge.source }))
            .collect();
        if !near.is_empty() {
            let _ = writeln!(text, "{verb} {}.", near.into_iter().collect::<Vec<_>>().join(", "));
        }
    }
    if !entity.columns.is_empty() {
        let columns: Vec<String> = entity.columns.iter().map(|column| format!("`{}`", column_text(column))).collect();
        let _ = writeln!(text, "Columns ({}): {}.", columns.len(), columns.join(", "));
    }
    for reference in &entity.references {
        let _ = writeln!(text, "It references `{}`.", reference.target);
    }
    definition(text, entity);
}

/// The statement that defines an object, abridged.
fn definition(text: &mut String, entity: &Entity) {
    if let Some(definition) = entity.node.properties.get("definition").and_then(|value| value.as_str()) {
        let _ = writeln!(text, "\n```sql\n{}\n```", abridged(definition, 1200));
    }
}

/// The lineage chains from `entity` one way: `a ← b ← c` (upstream) or `a → b → c` (downstream).
fn chains(text: &mut String, entity: &Entity, direction: Direction) {
    let (lineage, arrow, verb) = match direction {
        Direction::Upstream => (&entity.upstream, " ← ", "is fed by"),
        Direction::Downstream => (&entity.downstream, " → ", "feeds"),
    };
    let id = &entity.node.id;
    if lineage.edges.is_empty() {
        let none = match direction {
            Direction::Upstream if entity.node.kind == NodeKind::External => {
                "nothing in the ingested SQL: it is read but never defined or filled"
            }
            Direction::Upstream => "nothing in the ingested SQL (no statement fills it from other objects)",
            Direction::Downstream => "nothing in the ingested SQL (no view, table or procedure reads it)",
        };
        let _ = writeln!(text, "`{id}` {verb} {none}.");
        return;
    }
    let paths = paths(lineage, id, direction);
    let _ = writeln!(text, "`{id}` {verb}:");
    for path in paths.iter().take(MAX_CHAINS) {
        let names: Vec<String> = path.iter().map(|step| format!("`{step}`")).collect();
        let _ = writeln!(text, "- {}", names.join(arrow));
    }
    if paths.len() > MAX_CHAINS {
        let _ = writeln!(text, "- … and {} more chains", paths.len() - MAX_CHAINS);
    }
    if lineage.truncated {
        let _ = writeln!(text, "(The lineage goes further than shown here.)");
    }
}

/// Every path from `start` to an end of the lineage (an object with nothing further), the start left
/// out, shortest first.
fn paths(lineage: &Lineage, start: &str, direction: Direction) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&GraphEdge>> = BTreeMap::new();
    for edge in &lineage.edges {
        let from = match direction {
            Direction::Upstream => edge.source.as_str(),
            Direction::Downstream => edge.target.as_str(),
        };
        next.entry(from).or_default().push(edge);
    }
    let mut done = Vec::new();
    let mut open = vec![vec![start.to_owned()]];
    while let Some(path) = open.pop() {
        let last = path.last().expect("paths are never empty").as_str();
        let steps: Vec<&String> = next
            .get(last)
            .into_iter()
            .flatten()
            .map(|edge| match direction {
                Direction::Upstream => &edge.target,
                Direction::Downstream => &edge.source,
            })
            .filter(|step| !path.contains(step))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if steps.is_empty() || done.len() + open.len() > 200 {
            if path.len() > 1 {
                done.push(path[1..].to_vec());
            }
            continue;
        }
        for step in steps.into_iter().rev() {
            let mut longer = path.clone();
            longer.push(step.clone());
            open.push(longer);
        }
    }
    done.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    done
}

fn statements(text: &mut String, evidence: &Evidence) {
    if evidence.hits.is_empty() {
        let _ = writeln!(text, "No ingested statement in project `{}` matches the words of the question.", evidence.project);
        return;
    }
    let _ = writeln!(text, "The statements that best match the question:");
    // The question's words that can match a line: not the words questions are made of.
    let terms: BTreeSet<String> = query_terms(&evidence.question).into_iter().filter(|term| !is_stop_word(term)).collect();
    for hit in &evidence.hits {
        let chunk = &hit.chunk;
        let _ = write!(text, "- `{}` lines {}-{}: {}", chunk.filename, chunk.start_line, chunk.end_line, chunk.statement_kind);
        if let Some(object) = &chunk.object {
            let _ = write!(text, " `{object}`");
        }
        let lines = matching_lines(&chunk.text, chunk.start_line, &terms);
        if lines.is_empty() {
            let first_line = chunk.text.lines().find(|line| !line.trim().is_empty()).unwrap_or_default().trim();
            let _ = writeln!(text, " — `{}`", abridged(first_line, 100));
        } else {
            let shown: Vec<String> = lines.iter().map(|(number, line)| format!("line {number}: `{}`", abridged(line, 100))).collect();
            let _ = writeln!(text, " — {}", shown.join(" · "));
        }
    }
}

/// Most matching lines shown per statement.
const MATCHING_LINES: usize = 2;

/// The lines of a statement (starting at `first_line` of its file) holding the most of `terms`, in
/// their order, with their line numbers.
fn matching_lines<'a>(statement: &'a str, first_line: u32, terms: &BTreeSet<String>) -> Vec<(u32, &'a str)> {
    if terms.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(usize, usize, &str)> = statement
        .lines()
        .enumerate()
        .map(|(index, line)| {
            (tokenize(line).iter().filter(|token| terms.contains(token.as_str())).collect::<BTreeSet<_>>().len(), index, line.trim())
        })
        .filter(|(held, _, _)| *held > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(MATCHING_LINES);
    scored.sort_by_key(|(_, index, _)| *index);
    scored.into_iter().map(|(_, index, line)| (first_line + index as u32, line)).collect()
}

fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Table => "table",
        NodeKind::View => "view",
        NodeKind::MaterializedView => "materialized view",
        NodeKind::Column => "column",
        NodeKind::FunctionOrProcedure => "function or procedure",
        NodeKind::External => "external object",
        NodeKind::Query => "standalone query",
    }
}

fn plural(kind: NodeKind, count: u64) -> String {
    let name = kind_name(kind);
    match (count, kind) {
        (1, _) => name.to_owned(),
        (_, NodeKind::FunctionOrProcedure) => "functions or procedures".to_owned(),
        (_, NodeKind::Query) => "standalone queries".to_owned(),
        _ => format!("{name}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_holding_most_of_the_words_are_shown_in_their_order() {
        let statement =
            "CREATE TABLE raw.customers (\n  customer_id bigint NOT NULL,\n  name text,\n  CONSTRAINT pk PRIMARY KEY (customer_id)\n)";
        let terms: BTreeSet<String> = ["customer_id", "customer", "primary", "key"].map(String::from).into();
        assert_eq!(
            matching_lines(statement, 10, &terms),
            [(11, "customer_id bigint NOT NULL,"), (13, "CONSTRAINT pk PRIMARY KEY (customer_id)")]
        );
        assert!(matching_lines(statement, 10, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn titles_are_the_question_shortened() {
        assert_eq!(title("what feeds gold.revenue?"), "What feeds gold.revenue");
        assert_eq!(title("one two three four five six seven eight nine"), "One two three four five six seven eight…");
        assert_eq!(title("   "), "New conversation");
    }
}
