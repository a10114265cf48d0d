//! What the knowledge base knows that bears on a question, gathered per mode, and the context
//! budget that keeps deep mode's evidence to a size a model can take.
//!
//! * text: nothing (the question alone);
//! * semantic: the statements search ranks best for the question;
//! * graph: the objects and columns the question names ([`super::entities`]): an object with its
//!   columns and object-level lineage both ways, a column with the expression that computes it and
//!   column-level lineage both ways; an overview of the project when it names none;
//! * deep: graph and semantic together, with the session's history (a follow-up that names nothing
//!   is about what the last turns named), then trimmed to `CHAT_CONTEXT_BUDGET_CHARS`, least relevant
//!   first, saying what was dropped in `warnings`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::entities::{self, ColumnHits, Match, Named, Unmatched};
use super::{Mode, Source, SourceKind, Turn};
use crate::error::ApiError;
use crate::http::AppState;
use crate::lineage::{Direction, EdgeKind, GraphEdge, GraphNode, NodeKind, column_key, column_part};
use crate::store::SearchHit;

/// Steps of lineage gathered each way from a named object.
pub const LINEAGE_DEPTH: u32 = 4;
/// Most objects gathered each way from one named object.
pub const LINEAGE_NODES: usize = 60;
/// Statements semantic and deep modes retrieve.
pub const SEARCH_HITS: usize = 8;
/// Objects listed per kind in an overview.
pub const OVERVIEW_EXAMPLES: usize = 8;
/// Columns read per key the question may name (a name shared by more is offered by its first ones).
pub const COLUMNS_PER_KEY: usize = 20;
/// Earlier questions a follow-up that names nothing is matched against.
const EARLIER_QUESTIONS: usize = 3;

/// What the question asks for, as far as words tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// What the project holds.
    Overview,
    /// What feeds the named objects.
    Upstream,
    /// What depends on them.
    Downstream,
    /// Their columns and definition.
    Describe,
    /// Anything else: a bit of everything known.
    General,
}

impl Intent {
    /// Reads the intent from the question's words (`names_something`: whether it named an object).
    pub fn of(question: &str, names_something: bool) -> Intent {
        let q = format!(" {} ", question.to_lowercase().replace(|c: char| !c.is_alphanumeric() && c != '\'', " "));
        let has = |phrases: &[&str]| phrases.iter().any(|phrase| q.contains(phrase));
        if has(&[
            " what depends on ",
            " which depend",
            " who depends on ",
            " depend on it ",
            " downstream ",
            " impact",
            " affected ",
            " used by ",
            " read by ",
            " uses it ",
            " consumers ",
            " break ",
        ]) || (has(&[" depends on ", " depend on "]) && has(&[" what ", " which ", " who "]) && !has(&[" does ", " do "]))
        {
            return Intent::Downstream;
        }
        if has(&[
            " feed",
            " upstream ",
            " come from ",
            " comes from ",
            " source",
            " built from ",
            " derived from ",
            " where does ",
            " depend on ",
            " depends on ",
            " filled ",
            " loads ",
            " populate",
            " calculat",
            " comput",
            " derive",
            " formula",
            " logic ",
        ]) {
            return Intent::Upstream;
        }
        if has(&[
            " describe ",
            " columns ",
            " column ",
            " definition ",
            " defined ",
            " what is ",
            " what's ",
            " explain ",
            " schema of ",
            " fields ",
        ]) && names_something
        {
            return Intent::Describe;
        }
        if !names_something
            && has(&[
                " what is in ",
                " what's in ",
                " overview ",
                " summary ",
                " summarize ",
                " summarise ",
                " what tables ",
                " which tables ",
                " list ",
                " how many ",
                " everything ",
                " database ",
                " contain",
                " what do you know ",
            ])
        {
            return Intent::Overview;
        }
        if names_something { Intent::General } else { Intent::Overview }
    }
}

/// Whether a question asks how something is made.
pub fn asks_how(question: &str) -> bool {
    let q = format!(" {} ", question.to_lowercase());
    [" how ", "calculat", "comput", " built", " logic", "formula"].iter().any(|word| q.contains(word))
}

/// What the project holds, in brief.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overview {
    /// Objects per kind (columns are counted over every project: the store keeps them per kind).
    pub counts: BTreeMap<NodeKind, u64>,
    /// A few objects of each kind, by name.
    pub examples: BTreeMap<NodeKind, Vec<String>>,
    pub edges: u64,
    pub files: u64,
}

/// One object or column the question names, with what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub node: GraphNode,
    pub written: String,
    pub how: Match,
    /// Other nodes the words could mean, best first.
    pub alternatives: Vec<String>,
    /// An object's columns, in order.
    pub columns: Vec<GraphNode>,
    /// Foreign keys and other references it makes.
    pub references: Vec<GraphEdge>,
    pub upstream: Lineage,
    pub downstream: Lineage,
}

impl Entity {
    pub fn is_column(&self) -> bool {
        self.node.kind == NodeKind::Column
    }

    /// The text of the expression that computes a column, as ingestion kept it.
    pub fn expression(&self) -> Option<&str> {
        self.node.properties.get("expression").and_then(|value| value.as_str())
    }
}

/// Lineage one way from an entity: the edges walked (object to object for an object: READS_FROM,
/// DERIVES, CALLS; column to column for a column) and the nodes they reach, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    pub edges: Vec<GraphEdge>,
    pub nodes: BTreeMap<String, GraphNode>,
    /// Each edge's distance from the entity (1 for a direct source or dependant).
    pub depth: BTreeMap<String, u32>,
    pub truncated: bool,
}

/// Everything a provider answers from.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub mode: Mode,
    pub project: String,
    pub question: String,
    pub intent: Intent,
    /// Whether the question asks how something is made (built, calculated, computed): the answer
    /// then shows the definition.
    pub asks_how: bool,
    pub overview: Option<Overview>,
    pub entities: Vec<Entity>,
    pub unmatched: Vec<Unmatched>,
    pub hits: Vec<SearchHit>,
    pub history: Vec<Turn>,
    pub warnings: Vec<String>,
}

/// Gathers the evidence `mode` uses for `question` in `project`.
pub async fn gather(state: &AppState, mode: Mode, project: &str, question: &str, history: Vec<Turn>) -> Result<Evidence, ApiError> {
    let mut evidence = Evidence {
        mode,
        project: project.to_owned(),
        question: question.to_owned(),
        intent: Intent::General,
        asks_how: asks_how(question),
        overview: None,
        entities: Vec::new(),
        unmatched: Vec::new(),
        hits: Vec::new(),
        history: if mode == Mode::Deep { history } else { Vec::new() },
        warnings: Vec::new(),
    };
    if mode == Mode::Text {
        return Ok(evidence);
    }
    if mode == Mode::Semantic {
        evidence.hits = crate::knowledge::ranked_search(state, project, question, SEARCH_HITS, None).await?.1;
    }
    if matches!(mode, Mode::Graph | Mode::Deep) {
        // A follow-up that names nothing is about what the last turns named.
        let earlier: Vec<String> = if mode == Mode::Deep {
            evidence.history.iter().rev().take(EARLIER_QUESTIONS).map(|turn| turn.question.clone()).collect()
        } else {
            Vec::new()
        };
        let (objects, columns) = tokio::try_join!(
            async { Ok::<_, ApiError>(state.stores.lineage.object_index(project).await?) },
            column_hits(state, project, std::iter::once(question).chain(earlier.iter().map(String::as_str)))
        )?;
        let question_owned = question.to_owned();
        // Matching compares the question's words with every object: CPU work that grows with the
        // project, so off the async workers.
        let (found, from_earlier, objects) = state
            .cpu
            .run("chat", move || {
                let found = entities::find(&question_owned, &objects, &columns);
                if !found.named.is_empty() {
                    return (found, None, objects);
                }
                for earlier in earlier {
                    let earlier_found = entities::find(&earlier, &objects, &columns);
                    if !earlier_found.named.is_empty() {
                        return (earlier_found, Some(earlier), objects);
                    }
                }
                (found, None, objects)
            })
            .await?;
        if let Some(earlier) = from_earlier {
            evidence.warnings.push(format!("the question names no object; answering about what \"{}\" named", abridged(&earlier, 80)));
        }
        evidence.intent = Intent::of(question, !found.named.is_empty());
        evidence.unmatched = found.unmatched;
        // Deep mode's search runs beside the lineage reads (each on its own pooled connection). The
        // objects the question names are known already, so search need not look for them again:
        // a column stands for the object that holds it.
        let search = async {
            if mode != Mode::Deep {
                return Ok(Vec::new());
            }
            let named: Vec<String> =
                found.named.iter().map(|named| entities::object_of(&named.id).unwrap_or(&named.id).to_owned()).collect();
            Ok::<_, ApiError>(crate::knowledge::ranked_search(state, project, question, SEARCH_HITS, Some(&named)).await?.1)
        };
        // Each named thing's reads are a chain of store calls; the chains run side by side (at most
        // `MAX_NAMED` of them), their results kept in the question's order.
        let entities = async {
            let each = found.named.clone().into_iter().map(|named| async move {
                if named.kind == NodeKind::Column {
                    return column_entities(state, project, named).await;
                }
                let nodes = state.stores.lineage.get_nodes(project, std::slice::from_ref(&named.id)).await?;
                let Some(node) = nodes.into_iter().next() else { return Ok(Vec::new()) };
                Ok(vec![entity(state, project, node, named.written, named.how, named.alternatives).await?])
            });
            let gathered: Vec<Entity> = futures::future::try_join_all(each).await?.into_iter().flatten().collect();
            if gathered.is_empty() {
                return Ok::<_, ApiError>((gathered, Some(overview(state, &objects).await?)));
            }
            Ok((gathered, None))
        };
        let ((entities, overview), hits) = tokio::try_join!(entities, search)?;
        (evidence.entities, evidence.overview, evidence.hits) = (entities, overview, hits);
    } else {
        evidence.intent = Intent::of(question, false);
    }
    Ok(evidence)
}

/// The columns the store holds for the keys the questions' words may name columns by, and, for
/// runs of words that named none, the columns they name shortened (`tax amount`: `TaxAmt`).
async fn column_hits(state: &AppState, project: &str, questions: impl Iterator<Item = &str> + Clone) -> Result<ColumnHits, ApiError> {
    let mut keys: Vec<String> = Vec::new();
    for question in questions.clone() {
        keys.extend(entities::column_keys(question).into_iter().filter(|key| !keys.contains(key)).collect::<Vec<_>>());
    }
    let store = &state.stores.lineage;
    let mut hits = ColumnHits::new();
    for id in store.find_columns(project, &keys, false, COLUMNS_PER_KEY).await? {
        if let Some(part) = column_part(&id) {
            hits.entry(column_key(part)).or_default().push(id);
        }
    }
    let runs: Vec<entities::ShortenedRun> =
        questions.flat_map(|question| entities::shortened_runs(question, |key| hits.contains_key(key))).collect();
    if runs.is_empty() {
        return Ok(hits);
    }
    let prefixes: Vec<String> = runs.iter().map(|run| run.prefix.clone()).collect();
    let candidates = store.find_columns(project, &prefixes, true, COLUMNS_PER_KEY).await?;
    entities::add_shortened(&mut hits, &runs, candidates);
    Ok(hits)
}

/// The columns a column name means, each with its lineage: at most
/// [`entities::MAX_COLUMNS_PER_NAME`], those computed by an expression first (where a value is
/// made, not passed along), the others offered as alternatives of the first.
async fn column_entities(state: &AppState, project: &str, named: Named) -> Result<Vec<Entity>, ApiError> {
    let ids: Vec<String> = std::iter::once(named.id).chain(named.alternatives).collect();
    let mut nodes = state.stores.lineage.get_nodes(project, &ids).await?;
    nodes.sort_by_key(|node| (!node.properties.contains_key("expression"), node.properties.contains_key("inferred"), node.id.clone()));
    let others: Vec<String> = nodes.iter().skip(entities::MAX_COLUMNS_PER_NAME).map(|node| node.id.clone()).collect();
    let mut found: Vec<Entity> = Vec::new();
    for (rank, node) in nodes.into_iter().take(entities::MAX_COLUMNS_PER_NAME).enumerate() {
        // A column that carries another one's value along (in its lineage) is shown in that one's chains.
        if found.iter().any(|entity| entity.upstream.nodes.contains_key(&node.id) || entity.downstream.nodes.contains_key(&node.id)) {
            continue;
        }
        let alternatives = if rank == 0 { others.clone() } else { Vec::new() };
        let (upstream, downstream) = tokio::try_join!(
            lineage(state, project, &node.id, Direction::Upstream, is_column_flow),
            lineage(state, project, &node.id, Direction::Downstream, is_column_flow)
        )?;
        found.push(Entity {
            node,
            written: named.written.clone(),
            how: named.how,
            alternatives,
            columns: Vec::new(),
            references: Vec::new(),
            upstream,
            downstream,
        });
    }
    Ok(found)
}

async fn entity(
    state: &AppState,
    project: &str,
    node: GraphNode,
    written: String,
    how: Match,
    alternatives: Vec<String>,
) -> Result<Entity, ApiError> {
    let store = &state.stores.lineage;
    // Its own edges and columns, and its lineage each way: three chains of reads, side by side.
    let own = async {
        let own = store.edges_of(project, std::slice::from_ref(&node.id), Direction::Upstream).await?;
        let column_ids: Vec<String> = own.iter().filter(|edge| edge.kind == EdgeKind::Contains).map(|edge| edge.target.clone()).collect();
        let columns = store.get_nodes(project, &column_ids).await?;
        Ok::<_, ApiError>((own, columns))
    };
    let ((own, mut columns), upstream, downstream) = tokio::try_join!(
        own,
        lineage(state, project, &node.id, Direction::Upstream, is_object_flow),
        lineage(state, project, &node.id, Direction::Downstream, is_object_flow)
    )?;
    columns.sort_by_key(|column| {
        (column.properties.get("ordinal").and_then(|ordinal| ordinal.as_u64()).unwrap_or(u64::MAX), column.id.clone())
    });
    let references = own.into_iter().filter(|edge| edge.kind == EdgeKind::References).collect();
    Ok(Entity { node, written, how, alternatives, columns, references, upstream, downstream })
}

/// Lineage one way along the edges `follows` keeps (object to object, or column to column).
async fn lineage(
    state: &AppState,
    project: &str,
    id: &str,
    direction: Direction,
    follows: fn(&GraphEdge) -> bool,
) -> Result<Lineage, ApiError> {
    let subgraph = state.stores.lineage.walk(project, id, &[direction], LINEAGE_DEPTH, LINEAGE_NODES, follows).await?;
    // Depth by breadth-first distance from the entity.
    let mut depth_of_node = BTreeMap::from([(id.to_owned(), 0u32)]);
    let mut depth = BTreeMap::new();
    let mut frontier = vec![id.to_owned()];
    let mut level = 0;
    while !frontier.is_empty() {
        level += 1;
        let mut next = Vec::new();
        for edge in &subgraph.edges {
            let (from, to) = match direction {
                Direction::Upstream => (&edge.source, &edge.target),
                Direction::Downstream => (&edge.target, &edge.source),
            };
            if frontier.contains(from) && !depth.contains_key(&edge.id) {
                depth.insert(edge.id.clone(), level);
                if !depth_of_node.contains_key(to) {
                    depth_of_node.insert(to.clone(), level);
                    next.push(to.clone());
                }
            }
        }
        frontier = next;
    }
    let ids: Vec<String> = subgraph.nodes.iter().filter(|node| *node != id).cloned().collect();
    let nodes = state.stores.lineage.get_nodes(project, &ids).await?.into_iter().map(|node| (node.id.clone(), node)).collect();
    Ok(Lineage { edges: subgraph.edges, nodes, depth, truncated: subgraph.truncated })
}

/// Object-level lineage: columns and containment left out, so chains read object to object.
fn is_object_flow(edge: &GraphEdge) -> bool {
    matches!(edge.kind, EdgeKind::ReadsFrom | EdgeKind::Derives | EdgeKind::Calls)
        && column_part(&edge.source).is_none()
        && column_part(&edge.target).is_none()
}

/// Column-level lineage: a column read from others.
fn is_column_flow(edge: &GraphEdge) -> bool {
    matches!(edge.kind, EdgeKind::ReadsFrom | EdgeKind::Derives)
        && column_part(&edge.source).is_some()
        && column_part(&edge.target).is_some()
}

/// A node's id as people write it: `object.column` for a column (`object#column`).
pub fn display_id(id: &str) -> String {
    match entities::object_of(id) {
        Some(object) => format!("{object}.{}", &id[object.len() + 1..]),
        None => id.to_owned(),
    }
}

async fn overview(state: &AppState, objects: &[(String, NodeKind)]) -> Result<Overview, ApiError> {
    let counts = state.stores.lineage.graph_counts().await?;
    let mut overview = Overview { edges: counts.edges, files: counts.files, ..Overview::default() };
    for (id, kind) in objects {
        *overview.counts.entry(*kind).or_default() += 1;
        let examples = overview.examples.entry(*kind).or_default();
        if examples.len() < OVERVIEW_EXAMPLES {
            examples.push(id.clone());
        }
    }
    if let Some(columns) = counts.node_types.get(NodeKind::Column.as_str()) {
        overview.counts.insert(NodeKind::Column, *columns);
    }
    Ok(overview)
}

impl Evidence {
    /// Trims the evidence to `budget` characters as [`Evidence::render`] counts them, dropping the
    /// least relevant pieces first (older history, weaker search hits, farther lineage), and says
    /// what went in `warnings`.
    pub fn fit(&mut self, budget: usize) {
        let mut size = self.render().len();
        if size <= budget {
            return;
        }
        let (mut turns, mut hits, mut steps) = (0, 0, 0);
        // Oldest history first.
        while size > budget && !self.history.is_empty() {
            self.history.remove(0);
            turns += 1;
            size = self.render().len();
        }
        // Then the weakest search hits (they are best first).
        while size > budget && !self.hits.is_empty() {
            self.hits.pop();
            hits += 1;
            size = self.render().len();
        }
        // Then the farthest lineage, one level at a time.
        while size > budget {
            let farthest = self
                .entities
                .iter()
                .flat_map(|entity| entity.upstream.depth.values().chain(entity.downstream.depth.values()))
                .max()
                .copied();
            let Some(farthest) = farthest else { break };
            for entity in &mut self.entities {
                for lineage in [&mut entity.upstream, &mut entity.downstream] {
                    let before = lineage.edges.len();
                    lineage.edges.retain(|edge| lineage.depth.get(&edge.id).is_none_or(|depth| *depth < farthest));
                    steps += before - lineage.edges.len();
                    lineage.depth.retain(|_, depth| *depth < farthest);
                    let kept: BTreeSet<&String> = lineage.edges.iter().flat_map(|edge| [&edge.source, &edge.target]).collect();
                    let nodes = std::mem::take(&mut lineage.nodes);
                    lineage.nodes = nodes.into_iter().filter(|(id, _)| kept.contains(id)).collect();
                    lineage.truncated = true;
                }
            }
            size = self.render().len();
        }
        let mut dropped = Vec::new();
        for (count, what) in [(turns, "earlier turns"), (hits, "search hits"), (steps, "lineage edges")] {
            if count > 0 {
                dropped.push(format!("{count} {what}"));
            }
        }
        if !dropped.is_empty() {
            self.warnings.push(format!("context budget of {budget} characters: left out the least relevant {}", dropped.join(", ")));
        }
    }

    /// The evidence as plain text for a language model's context (and the measure of its size).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        if let Some(overview) = &self.overview {
            let _ = writeln!(text, "## Project {}: {} files, {} edges", self.project, overview.files, overview.edges);
            for (kind, count) in &overview.counts {
                let examples = overview.examples.get(kind).map(|names| names.join(", ")).unwrap_or_default();
                let _ = writeln!(text, "- {count} {kind}: {examples}");
            }
        }
        for entity in &self.entities {
            let node = &entity.node;
            match (&node.parent, entity.is_column()) {
                (Some(parent), true) => {
                    let _ = writeln!(text, "## {} (column of {parent}){}", display_id(&node.id), defined_at(node));
                }
                _ => {
                    let _ = writeln!(text, "## {} ({}){}", node.id, node.kind, defined_at(node));
                }
            }
            if let Some(expression) = entity.expression() {
                let _ = writeln!(text, "Computed as: {} = {expression}{}", node.name, computed_at(entity).unwrap_or_default());
            }
            if !entity.alternatives.is_empty() {
                let others: Vec<String> = entity.alternatives.iter().map(|id| display_id(id)).collect();
                let _ = writeln!(text, "\"{}\" could also mean: {}", entity.written, others.join(", "));
            }
            if !entity.columns.is_empty() {
                let columns: Vec<String> = entity.columns.iter().map(column_text).collect();
                let _ = writeln!(text, "Columns: {}", columns.join(", "));
            }
            if let Some(definition) = node.properties.get("definition").and_then(|value| value.as_str()) {
                let _ = writeln!(text, "Definition: {definition}");
            }
            for edge in &entity.references {
                let _ = writeln!(text, "References: {}", edge.target);
            }
            for (label, lineage) in [("Reads from", &entity.upstream), ("Read by", &entity.downstream)] {
                for edge in &lineage.edges {
                    let _ = writeln!(
                        text,
                        "{label}: {} -[{}]-> {}{}",
                        display_id(&edge.source),
                        edge.kind,
                        display_id(&edge.target),
                        edge_at(edge)
                    );
                }
            }
        }
        for unmatched in &self.unmatched {
            let _ = writeln!(text, "No object named {}; closest: {}", unmatched.written, unmatched.closest.join(", "));
        }
        for hit in &self.hits {
            let chunk = &hit.chunk;
            let _ = writeln!(
                text,
                "## {} lines {}-{} (score {:.2})\n{}",
                chunk.filename, chunk.start_line, chunk.end_line, hit.score, chunk.text
            );
        }
        for turn in &self.history {
            let _ = writeln!(text, "Earlier question: {}\nEarlier answer: {}", turn.question, turn.answer);
        }
        text
    }

    /// The knowledge the answer stands on, with stable ids: nodes, edges and chunks.
    pub fn sources(&self) -> Vec<Source> {
        let mut sources = Vec::new();
        let mut seen = BTreeSet::new();
        let mut add = |source: Source| {
            if seen.insert((source.kind, source.id.clone())) {
                sources.push(source);
            }
        };
        for entity in &self.entities {
            let node = &entity.node;
            let note = match entity.how {
                Match::Exact => format!("named in the question as {}", entity.written),
                Match::Unqualified => format!("{} without its schema", entity.written),
                Match::Joined => format!("\"{}\" read as a name", entity.written),
                Match::Loose => format!("the closest fit to \"{}\" among the names' parts", entity.written),
                Match::Near => format!("closest name to \"{}\"", entity.written),
            };
            add(Source::new(SourceKind::Node, &node.id, note, json!({"kind": node.kind, "file": node.file, "line": node.line})));
            for (lineage, way) in [(&entity.upstream, "upstream"), (&entity.downstream, "downstream")] {
                for edge in &lineage.edges {
                    let depth = lineage.depth.get(&edge.id).copied().unwrap_or(1);
                    add(Source::new(
                        SourceKind::Edge,
                        &edge.id,
                        format!("{way} of {}, {} step(s) away", node.id, depth),
                        json!({"kind": edge.kind, "depth": depth}),
                    ));
                }
            }
        }
        for hit in &self.hits {
            let chunk = &hit.chunk;
            add(Source::new(
                SourceKind::Chunk,
                &chunk.id,
                format!("{} lines {}-{}", chunk.filename, chunk.start_line, chunk.end_line),
                json!({"score": (hit.score * 1000.0).round() / 1000.0, "object": chunk.object, "statement_kind": chunk.statement_kind}),
            ));
        }
        sources
    }

    /// The subgraph the answer is about: the named objects and their lineage.
    pub fn graph(&self) -> (Vec<GraphNode>, Vec<GraphEdge>) {
        let mut nodes = BTreeMap::new();
        let mut edges = BTreeMap::new();
        for entity in &self.entities {
            nodes.insert(entity.node.id.clone(), entity.node.clone());
            for lineage in [&entity.upstream, &entity.downstream] {
                for (id, node) in &lineage.nodes {
                    nodes.entry(id.clone()).or_insert_with(|| node.clone());
                }
                for edge in &lineage.edges {
                    edges.entry(edge.id.clone()).or_insert_with(|| edge.clone());
                }
            }
        }
        (nodes.into_values().collect(), edges.into_values().collect())
    }
}

/// ` (in file.sql line 7)`: where an edge was found, when known.
pub fn edge_at(edge: &GraphEdge) -> String {
    let file = edge.properties.get("file").and_then(|value| value.as_str());
    let line = edge.properties.get("line").and_then(|value| value.as_u64());
    match (file, line) {
        (Some(file), Some(line)) => format!(" (in {file} line {line})"),
        (Some(file), None) => format!(" (in {file})"),
        _ => String::new(),
    }
}

/// Where a column's expression is: the statement that fills it from its sources.
pub fn computed_at(entity: &Entity) -> Option<String> {
    let first = entity.upstream.edges.iter().find(|edge| edge.source == entity.node.id)?;
    Some(edge_at(first)).filter(|at| !at.is_empty())
}

/// ` — defined in file.sql line 3`, or ` — read but never defined`.
pub fn defined_at(node: &GraphNode) -> String {
    match (&node.file, node.line, node.kind) {
        (_, _, NodeKind::External) => ", read but never defined in the ingested SQL".to_owned(),
        (Some(file), Some(line), _) => format!(", defined in {file} line {line}"),
        (Some(file), None, _) => format!(", defined in {file}"),
        _ => String::new(),
    }
}

/// `name TYPE`, or the name alone.
pub fn column_text(column: &GraphNode) -> String {
    match column.properties.get("data_type").and_then(|value| value.as_str()) {
        Some(data_type) => format!("{} {data_type}", column.name),
        None => column.name.clone(),
    }
}

/// At most `chars` characters of `text`, with `…` when cut.
pub fn abridged(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_are_read_from_the_words() {
        assert_eq!(Intent::of("What feeds gold.revenue?", true), Intent::Upstream);
        assert_eq!(Intent::of("Where does revenue come from", true), Intent::Upstream);
        assert_eq!(Intent::of("What does gold.revenue depend on?", true), Intent::Upstream);
        assert_eq!(Intent::of("What depends on raw.orders?", true), Intent::Downstream);
        assert_eq!(Intent::of("Which views use raw.orders downstream", true), Intent::Downstream);
        assert_eq!(Intent::of("Describe staging.orders", true), Intent::Describe);
        assert_eq!(Intent::of("What is in the database?", false), Intent::Overview);
        assert_eq!(Intent::of("staging.orders", true), Intent::General);
    }

    #[test]
    fn abridging_counts_characters() {
        assert_eq!(abridged("héllo wörld", 5), "héllo…");
        assert_eq!(abridged("short", 10), "short");
    }
}
